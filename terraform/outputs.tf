################################################################################
# Schema bucket
################################################################################

output "bucket_name" {
  description = "Name of the bucket the Lambda reads schemas from"
  value       = try(local.bucket_name, "")
}

output "bucket_arn" {
  description = "ARN of the bucket the Lambda reads schemas from"
  value       = try(local.bucket_arn, "")
}

output "schema_prefix" {
  description = "Key prefix of the schemas in the bucket: publish `<project>/schemas/<path>` to `s3://<bucket_name>/<schema_prefix><path>`"
  value       = var.schema_prefix
}

################################################################################
# Schemas
################################################################################

output "schema_keys" {
  description = "S3 keys of the schemas published from `schemas_dir`"
  value       = try(sort([for object in aws_s3_object.schema : object.key]), [])
}

################################################################################
# Lambda function
################################################################################

output "lambda_function_name" {
  description = "Name of the Lambda function"
  value       = try(aws_lambda_function.this.function_name, "")
}

output "lambda_function_arn" {
  description = "ARN of the Lambda function"
  value       = try(aws_lambda_function.this.arn, "")
}

output "lambda_log_group_name" {
  description = "Name of the Lambda function's CloudWatch log group"
  value       = try(aws_cloudwatch_log_group.lambda.name, "")
}

################################################################################
# IAM
################################################################################

output "lambda_role_arn" {
  description = "ARN of the Lambda function's IAM role"
  value       = try(aws_iam_role.lambda.arn, "")
}

################################################################################
# Endpoint (HTTP API or function URL)
################################################################################

output "api_endpoint" {
  description = "Base URL of the registry: https://<domain_name> when a custom domain is set, else e.g. https://abc123.execute-api.eu-west-1.amazonaws.com, or https://<url-id>.lambda-url.eu-west-1.on.aws with endpoint_type = \"function_url\""
  value       = try(local.client_endpoint, "")
}

output "api_execution_arn" {
  description = "The ARN prefix to be used in an `aws_lambda_permission`'s `source_arn` attribute; empty with a function URL"
  value       = try(aws_apigatewayv2_api.this[0].execution_arn, "")
}

output "api_access_log_group_name" {
  description = "Name of the CloudWatch log group holding the API's access logs; empty with a function URL, which writes none"
  value       = try(aws_cloudwatch_log_group.api[0].name, "")
}

output "function_url" {
  description = "The Lambda function URL as AWS prints it (with a trailing slash); empty with endpoint_type = \"http_api\""
  value       = try(aws_lambda_function_url.this[0].function_url, "")
}

output "sdk_config" {
  description = "What to set in each Segment SDK so it sends to the registry, keyed by SDK and then by the SDK's own option name"
  value = try({
    # analytics-python: analytics.host = ...; the SDK appends /v1/batch.
    python = { host = local.client_endpoint }
    # @segment/analytics-node: new Analytics({ host, path, writeKey }).
    node = { host = local.client_endpoint, path = "/v1/batch" }
    # analytics.js: integrations["Segment.io"].apiHost (no scheme) and the load option cdnURL.
    browser = { apiHost = "${local.client_domain}/v1", cdnURL = "https://${local.client_domain}" }
    # analytics-swift / analytics-kotlin: both hosts, or the settings Segment serves would point apiHost back at Segment.
    mobile = { apiHost = "${local.client_domain}/v1", cdnHost = "${local.client_domain}/v1" }
  }, {})
}

################################################################################
# Custom domain
################################################################################

output "domain_name_target_domain_name" {
  description = "API Gateway's regional hostname for `domain_name`, which DNS must point the domain at; null without a custom domain"
  value       = try(local.domain_target.target_domain_name, null)
}

output "domain_name_hosted_zone_id" {
  description = "Route 53 zone ID of that hostname, for an alias record; null without a custom domain"
  value       = try(local.domain_target.hosted_zone_id, null)
}

output "dns_record" {
  description = "The DNS record to create for `domain_name` with your DNS provider (a CNAME, or in Route 53 an alias A record to the same target); null when there is no custom domain or `route53_zone_id` let the module create it"
  value = local.create_domain && var.route53_zone_id == null ? {
    name  = var.domain_name
    type  = "CNAME"
    value = try(local.domain_target.target_domain_name, null)
  } : null
}
