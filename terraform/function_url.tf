################################################################################
# Lambda function URL (endpoint_type = "function_url")
################################################################################

# A function URL has no per-request charge (API Gateway's is most of the cost at one event per request) and no
# throttling of its own: the function's reserved concurrency is then the only cap on load and on the bill (so
# variables.tf refuses an unreserved function with this endpoint type).
resource "aws_lambda_function_url" "this" {
  count = local.create_function_url ? 1 : 0

  #checkov:skip=CKV_AWS_258:SDKs authenticate with a write key (Basic auth or the body's writeKey), which IAM auth cannot read; the Lambda checks it against registry_write_keys
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE"

  # Lambda answers CORS preflights itself and sets these headers on every response.
  cors {
    allow_origins = var.cors_allow_origins
    allow_methods = ["GET", "POST"]
    # analytics.js 1.84+ sends Authorization, and X-Retry-Count on retries.
    allow_headers = ["content-type", "authorization", "x-retry-count"]
    max_age       = var.cors_max_age
  }
}

# AWS also requires lambda:InvokeFunction with the condition lambda:InvokedViaFunctionUrl = true. The providers this
# module is tested with (5.x) cannot express it: 6.28.0 and later add it when they create the URL; README.md
# ("Function URL: the second permission") gives the command for older ones.
resource "aws_lambda_permission" "function_url" {
  count = local.create_function_url ? 1 : 0

  #checkov:skip=CKV_AWS_301:A public URL is the point: browsers and apps post to it with a write key the function checks; the permission covers the URL only (function_url_auth_type NONE), not direct invocation
  statement_id           = "AllowPublicFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.this.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}
