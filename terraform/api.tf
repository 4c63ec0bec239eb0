################################################################################
# HTTP API (endpoint_type = "http_api")
################################################################################

locals {
  # Every path a Segment SDK posts to: Segment's HTTP API names, analytics.js's one-letter paths,
  # the batch paths (/v1/batch for server SDKs, /v1/b for browser batching and mobile) and /v1/m for SDK metrics.
  segment_post_paths = ["batch", "b", "track", "identify", "page", "screen", "group", "alias", "t", "i", "p", "s", "g", "a", "m"]

  route_keys = toset(concat(
    [for path in local.segment_post_paths : "POST /v1/${path}"],
    # Browser SDKs fetch their settings from {cdnURL}/v1/projects/<key>/settings, mobile ones from {cdnHost}/projects/<key>/settings.
    ["GET /v1/projects/{writeKey}/settings"],
  ))

}

resource "aws_apigatewayv2_api" "this" {
  count = local.create_http_api ? 1 : 0

  name          = var.name
  description   = "Segment-compatible endpoint of reflekt-registry"
  protocol_type = "HTTP"

  # API Gateway answers CORS preflights itself and adds the headers to every response.
  cors_configuration {
    allow_origins = var.cors_allow_origins
    allow_methods = ["GET", "POST", "OPTIONS"]
    # analytics.js 1.84+ sends Authorization, and X-Retry-Count on retries.
    allow_headers = ["content-type", "authorization", "x-retry-count"]
    max_age       = var.cors_max_age
  }

  tags = var.tags
}

resource "aws_apigatewayv2_integration" "lambda" {
  count = local.create_http_api ? 1 : 0

  api_id                 = aws_apigatewayv2_api.this[0].id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.this.invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "this" {
  for_each = local.create_http_api ? local.route_keys : toset([])

  #checkov:skip=CKV_AWS_309:SDKs authenticate with a write key (Basic auth or the body's writeKey) that no HTTP API authorizer can read; the Lambda checks it against registry_write_keys
  api_id    = aws_apigatewayv2_api.this[0].id
  route_key = each.key
  target    = "integrations/${aws_apigatewayv2_integration.lambda[0].id}"
}

resource "aws_cloudwatch_log_group" "api" {
  count = local.create_http_api ? 1 : 0

  #checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts at rest already; a customer-managed key adds a key policy to manage for no stated need
  #checkov:skip=CKV_AWS_338:Access logs hold client IP addresses (personal data); retention is a variable so it can be kept short
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_in_days

  tags = var.tags
}

resource "aws_apigatewayv2_stage" "this" {
  count = local.create_http_api ? 1 : 0

  api_id = aws_apigatewayv2_api.this[0].id
  # $default serves the API at its root, so SDK hosts need no stage path.
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api[0].arn
    format = jsonencode({
      requestId               = "$context.requestId"
      requestTime             = "$context.requestTime"
      sourceIp                = "$context.identity.sourceIp"
      userAgent               = "$context.identity.userAgent"
      routeKey                = "$context.routeKey"
      status                  = "$context.status"
      responseLength          = "$context.responseLength"
      responseLatency         = "$context.responseLatency"
      integrationStatus       = "$context.integrationStatus"
      integrationLatency      = "$context.integrationLatency"
      integrationErrorMessage = "$context.integrationErrorMessage"
      errorMessage            = "$context.error.message"
    })
  }

  tags = var.tags
}

resource "aws_lambda_permission" "api" {
  count = local.create_http_api ? 1 : 0

  statement_id  = "AllowInvokeFromHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "apigateway.amazonaws.com"
  # Any stage and route of this API, and nothing else.
  source_arn = "${aws_apigatewayv2_api.this[0].execution_arn}/*/*"
}
