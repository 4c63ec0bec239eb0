# endpoint_type = "function_url": a Lambda function URL with CORS, and no API Gateway at all.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  bucket_name               = "example-schemas"
  registry_write_keys       = ["wk"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
  endpoint_type             = "function_url"
}

run "function_url" {
  command = plan

  variables {
    cors_allow_origins = ["https://shop.example.com"]
    cors_max_age       = 600
  }

  assert {
    condition     = aws_lambda_function_url.this[0].authorization_type == "NONE" && aws_lambda_function_url.this[0].function_name == "reflekt-registry"
    error_message = "The function URL must be public (the function checks the write key) and serve this function."
  }

  assert {
    condition = (
      aws_lambda_function_url.this[0].cors[0].allow_origins == toset(["https://shop.example.com"])
      && aws_lambda_function_url.this[0].cors[0].allow_methods == toset(["GET", "POST"])
      && aws_lambda_function_url.this[0].cors[0].allow_headers == toset(["content-type", "authorization", "x-retry-count"])
      && aws_lambda_function_url.this[0].cors[0].max_age == 600
    )
    error_message = "The function URL's CORS must come from cors_allow_origins and cors_max_age and allow the SDKs' headers."
  }

  assert {
    condition = (
      aws_lambda_permission.function_url[0].action == "lambda:InvokeFunctionUrl"
      && aws_lambda_permission.function_url[0].principal == "*"
      && aws_lambda_permission.function_url[0].function_url_auth_type == "NONE"
    )
    error_message = "The public permission must cover invoking through the URL only."
  }

  assert {
    condition = (
      length(aws_apigatewayv2_api.this) == 0 && length(aws_apigatewayv2_route.this) == 0
      && length(aws_apigatewayv2_stage.this) == 0 && length(aws_lambda_permission.api) == 0
      && length(aws_cloudwatch_log_group.api) == 0
    )
    error_message = "A function URL endpoint must create no API Gateway resources (and so no API Gateway charge)."
  }

  assert {
    condition     = aws_lambda_function.this.reserved_concurrent_executions == 20
    error_message = "Reserved concurrency, the function URL's only throttle, must keep its default."
  }
}

run "function_url_needs_reserved_concurrency" {
  command = plan

  variables {
    reserved_concurrent_executions = -1
  }

  expect_failures = [var.reserved_concurrent_executions]
}
