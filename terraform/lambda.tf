################################################################################
# Lambda function
################################################################################

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest already; a customer-managed key adds a key policy to manage for no stated need
  #checkov:skip=CKV_AWS_338:Logs may hold event payloads (personal data); retention is a variable so it can be kept short
  name              = local.lambda_log_group_name
  retention_in_days = var.log_retention_in_days

  tags = var.tags
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:API Gateway invokes the function synchronously; a dead-letter queue only serves asynchronous invocations
  #checkov:skip=CKV_AWS_117:The function reaches only S3 and Segment's public API; a VPC would add a NAT gateway for no isolation gain
  #checkov:skip=CKV_AWS_173:Lambda encrypts the environment at rest with its AWS-managed key; the values are Segment write keys, which can only send events, so a customer-managed key is not worth its key policy
  #checkov:skip=CKV_AWS_272:build.sh builds the zip and Terraform deploys it from the same checkout; there is no separate publisher whose code needs signing
  function_name    = var.name
  description      = "Validates Segment SDK events against Reflekt schemas and forwards them to Segment"
  role             = aws_iam_role.lambda.arn
  runtime          = "python3.13" # build.sh installs the dependencies for this version
  handler          = "reflekt_registry.handler.lambda_handler"
  architectures    = [var.architecture]
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = var.memory_size
  timeout          = var.timeout

  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = merge(
      {
        REGISTRY_BUCKET          = local.bucket_name
        REGISTRY_BUCKET_REGION   = local.bucket_region
        SCHEMA_PREFIX            = var.schema_prefix
        SEGMENT_API_HOST         = var.segment_api_host
        SCHEMA_CACHE_TTL_SECONDS = tostring(var.schema_cache_ttl_seconds)
        DEBUG                    = tostring(var.debug)
      },
      # With sources, the document holds every key; the registry refuses both at once.
      { for name, value in {
        REGISTRY_WRITE_KEYS       = join(",", var.registry_write_keys)
        VALID_SEGMENT_WRITE_KEY   = var.valid_segment_write_key
        INVALID_SEGMENT_WRITE_KEY = var.invalid_segment_write_key
      } : name => value if local.source_count == 0 },
      { for name, value in { REGISTRY_CONFIG_KEY = var.config_key } : name => value if local.config_enabled },
    )
  }

  # PassThrough is Lambda's default; stating it records that X-Ray stays off (HTTP APIs start no traces).
  tracing_config {
    mode = "PassThrough"
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition = local.source_count > 0 || (
        nonsensitive(length(var.registry_write_keys)) > 0 && nonsensitive(var.valid_segment_write_key != null && var.invalid_segment_write_key != null)
      )
      error_message = "Set registry_write_keys, valid_segment_write_key and invalid_segment_write_key (one pair of Segment sources), or sources."
    }
  }

  # The first invocation's logs must land in the group with a retention, written under the final permissions, and
  # its cold start reads the configuration document, which must be there.
  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.lambda, aws_s3_object.config]
}
