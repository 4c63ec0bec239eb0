################################################################################
# Endpoint: where clients reach the function, whichever endpoint_type serves it
################################################################################

locals {
  create_http_api     = var.endpoint_type == "http_api"
  create_function_url = var.endpoint_type == "function_url"

  # Both kinds answer at the root of an https origin; a function URL is printed with a trailing slash.
  api_endpoint = local.create_http_api ? aws_apigatewayv2_api.this[0].api_endpoint : trimsuffix(aws_lambda_function_url.this[0].function_url, "/")
  api_domain   = trimprefix(local.api_endpoint, "https://")
}
