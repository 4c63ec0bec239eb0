# Plans the module against a mocked AWS provider: no credentials, nothing created.
# lambda_zip_path must name an existing file (filebase64sha256 reads it at plan time): run `../build.sh` first,
# or pass `-var lambda_zip_path=<any zip>`.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name               = "example-schemas"
  registry_write_keys       = ["wk-web", "wk-server"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
}

run "lambda_function" {
  command = plan

  assert {
    condition     = aws_lambda_function.this.handler == "reflekt_registry.handler.lambda_handler"
    error_message = "The handler must be reflekt_registry.handler.lambda_handler."
  }

  assert {
    condition     = aws_lambda_function.this.runtime == "python3.13" && aws_lambda_function.this.architectures == tolist(["arm64"])
    error_message = "The function must default to python3.13 on arm64."
  }

  assert {
    condition     = aws_lambda_function.this.memory_size == 256 && aws_lambda_function.this.timeout == 10 && aws_lambda_function.this.reserved_concurrent_executions == 20
    error_message = "Memory, timeout or reserved concurrency lost their defaults."
  }

  assert {
    condition = nonsensitive(aws_lambda_function.this.environment[0].variables) == tomap({
      REGISTRY_BUCKET           = "example-schemas"
      REGISTRY_BUCKET_REGION    = "us-east-1"
      SCHEMA_PREFIX             = "schemas/"
      SPOOL_PREFIX              = "spool/"
      REGISTRY_WRITE_KEYS       = "wk-web,wk-server"
      VALID_SEGMENT_WRITE_KEY   = "valid-key"
      INVALID_SEGMENT_WRITE_KEY = "invalid-key"
      SEGMENT_API_HOST          = "https://api.segment.io"
      SCHEMA_CACHE_TTL_SECONDS  = "60"
      DEBUG                     = "false"
    })
    error_message = "The Lambda environment does not match what reflekt_registry.config reads."
  }

  assert {
    condition     = aws_cloudwatch_log_group.lambda.name == "/aws/lambda/reflekt-registry" && aws_cloudwatch_log_group.lambda.retention_in_days == 14
    error_message = "The function's log group must be pre-created with a 14-day retention."
  }
}

run "lambda_permissions_stop_at_the_schema_prefix" {
  command = plan

  variables {
    schema_prefix = "tracking/schemas/"
  }

  assert {
    condition = toset(flatten([for s in data.aws_iam_policy_document.lambda.statement : s.actions])) == toset([
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "logs:CreateLogStream", "logs:PutLogEvents",
    ])
    error_message = "The Lambda role may only read schemas, use the spool, list their prefixes and write its logs."
  }

  assert {
    condition = alltrue([
      for s in data.aws_iam_policy_document.lambda.statement :
      s.effect == "Allow" && s.not_actions == null && s.not_resources == null && length(s.principals) == 0
    ])
    error_message = "Statements must be plain Allow statements on named actions and resources."
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ReadSchemas"][0].resources == toset([
      "arn:aws:s3:::example-schemas/tracking/schemas/*",
    ])
    error_message = "s3:GetObject must cover only the objects under the schema prefix."
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ReadSchemaIndex"][0].resources == toset(["arn:aws:s3:::example-schemas/registry/tracking/schemas/index.json"])
    error_message = "Beyond the schemas, the Lambda reads only the index of their names."
  }

  assert {
    condition = (
      length([for s in data.aws_iam_policy_document.lambda.statement : s if contains(s.actions, "s3:ListBucket")]) == 1
      && [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ListOwnPrefixes"][0].actions == toset(["s3:ListBucket"])
      && [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ListOwnPrefixes"][0].resources == toset(["arn:aws:s3:::example-schemas"])
      && jsonencode([for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ListOwnPrefixes"][0].condition) == jsonencode([
        { test = "StringLike", values = ["tracking/schemas/*", "registry/tracking/schemas/index.json", "spool/*"], variable = "s3:prefix" },
      ])
    )
    error_message = "s3:ListBucket must be granted once, limited by an s3:prefix condition to the schema and spool prefixes and the index."
  }

  assert {
    condition = [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "WriteOwnLogs"][0].resources == toset([
      "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/reflekt-registry:*",
    ])
    error_message = "The Lambda may write only to its own log group."
  }
}

run "schema_bucket" {
  command = plan

  assert {
    condition     = aws_s3_bucket.this[0].bucket == "example-schemas"
    error_message = "The bucket must take bucket_name."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this[0].block_public_acls,
      aws_s3_bucket_public_access_block.this[0].block_public_policy,
      aws_s3_bucket_public_access_block.this[0].ignore_public_acls,
      aws_s3_bucket_public_access_block.this[0].restrict_public_buckets,
    ])
    error_message = "Every public access block setting must be on."
  }

  assert {
    condition     = aws_s3_bucket_versioning.this[0].versioning_configuration[0].status == "Enabled"
    error_message = "Versioning must be on, so an overwritten schema can be restored."
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "The bucket must encrypt with SSE-S3."
  }

  assert {
    condition = (
      data.aws_iam_policy_document.bucket[0].statement[0].effect == "Deny"
      && jsonencode(data.aws_iam_policy_document.bucket[0].statement[0].condition) == jsonencode([
        { test = "Bool", values = ["false"], variable = "aws:SecureTransport" },
      ])
    )
    error_message = "The bucket policy must deny requests that do not use TLS."
  }

  assert {
    condition     = data.aws_iam_policy_document.bucket[0].statement[0].resources == toset(["arn:aws:s3:::example-schemas", "arn:aws:s3:::example-schemas/*"])
    error_message = "The TLS rule must cover the bucket and its objects."
  }
}

run "existing_bucket" {
  command = plan

  variables {
    create_bucket = false
    bucket_name   = "team-schemas"
  }

  assert {
    condition     = length(aws_s3_bucket.this) == 0 && length(aws_s3_bucket_policy.this) == 0
    error_message = "An existing bucket must not be created or have its policy replaced."
  }

  assert {
    condition = (
      aws_lambda_function.this.environment[0].variables["REGISTRY_BUCKET"] == "team-schemas"
      && aws_lambda_function.this.environment[0].variables["REGISTRY_BUCKET_REGION"] == "eu-west-1"
    )
    error_message = "The Lambda must read the existing bucket, in that bucket's region."
  }

  assert {
    condition     = [for s in data.aws_iam_policy_document.lambda.statement : s if s.sid == "ReadSchemas"][0].resources == toset(["arn:aws:s3:::team-schemas/schemas/*"])
    error_message = "The Lambda role must read from the existing bucket."
  }
}

run "existing_bucket_needs_a_name" {
  command = plan

  variables {
    create_bucket = false
    bucket_name   = null
  }

  expect_failures = [data.aws_s3_bucket.existing]
}

run "http_api" {
  command = plan

  variables {
    throttling_burst_limit = 50
    throttling_rate_limit  = 25
  }

  assert {
    condition = toset(keys(aws_apigatewayv2_route.this)) == toset([
      "POST /v1/batch", "POST /v1/b",
      "POST /v1/track", "POST /v1/identify", "POST /v1/page", "POST /v1/screen", "POST /v1/group", "POST /v1/alias",
      "POST /v1/t", "POST /v1/i", "POST /v1/p", "POST /v1/s", "POST /v1/g", "POST /v1/a", "POST /v1/m",
      "GET /v1/projects/{writeKey}/settings",
    ])
    error_message = "The API must route every path the Segment SDKs call, and no other."
  }

  assert {
    condition = (
      aws_apigatewayv2_integration.lambda[0].integration_type == "AWS_PROXY"
      && aws_apigatewayv2_integration.lambda[0].payload_format_version == "2.0"
    )
    error_message = "The Lambda integration must be a proxy with payload format 2.0."
  }

  assert {
    condition     = aws_apigatewayv2_stage.this[0].name == "$default" && aws_apigatewayv2_stage.this[0].auto_deploy
    error_message = "The API must serve an auto-deployed $default stage, so SDK hosts carry no stage path."
  }

  assert {
    condition = (
      aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_burst_limit == 50
      && aws_apigatewayv2_stage.this[0].default_route_settings[0].throttling_rate_limit == 25
    )
    error_message = "Stage throttling must come from throttling_burst_limit and throttling_rate_limit."
  }

  assert {
    condition     = aws_cloudwatch_log_group.api[0].retention_in_days == 14 && length(aws_apigatewayv2_stage.this[0].access_log_settings) == 1
    error_message = "Access logs must go to a log group with a retention."
  }

  assert {
    condition = (
      aws_apigatewayv2_api.this[0].cors_configuration[0].allow_origins == toset(["*"])
      && aws_apigatewayv2_api.this[0].cors_configuration[0].allow_methods == toset(["GET", "POST", "OPTIONS"])
      && aws_apigatewayv2_api.this[0].cors_configuration[0].allow_headers == toset(["content-type", "authorization", "x-retry-count"])
    )
    error_message = "CORS must let browser SDKs post with Authorization and X-Retry-Count."
  }

  assert {
    condition     = aws_lambda_permission.api[0].principal == "apigateway.amazonaws.com" && aws_lambda_permission.api[0].action == "lambda:InvokeFunction"
    error_message = "Only API Gateway may invoke the function."
  }

  assert {
    condition     = length(aws_lambda_function_url.this) == 0 && length(aws_lambda_permission.function_url) == 0
    error_message = "The default endpoint_type (http_api) must create no function URL."
  }
}

run "rejects_bad_inputs" {
  command = plan

  variables {
    name                  = "Reflekt_Registry"
    architecture          = "sparc"
    memory_size           = 64
    timeout               = 60
    log_retention_in_days = 10
    schema_prefix         = "schemas"
    segment_api_host      = "http://api.segment.io"
    registry_write_keys   = ["has space"]
    endpoint_type         = "rest_api"
  }

  expect_failures = [
    var.name,
    var.architecture,
    var.memory_size,
    var.timeout,
    var.log_retention_in_days,
    var.schema_prefix,
    var.segment_api_host,
    var.registry_write_keys,
    var.endpoint_type,
  ]
}

# The schema index and the configuration document are not schemas: a prefix over either is refused.
run "rejects_a_schema_prefix_holding_the_index" {
  command = plan

  variables {
    schema_prefix = "registry/"
  }

  expect_failures = [var.schema_prefix]
}

run "rejects_a_schema_prefix_holding_the_configuration_document" {
  command = plan

  variables {
    schema_prefix = "settings/"
    config_key    = "settings/config.json"
  }

  expect_failures = [var.schema_prefix]
}
