# The SDK settings the module prints. The endpoint only exists after apply, so this applies against the mocked
# provider (nothing is created), whose API endpoint is fixed in mocks/aws.tfmock.hcl.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  registry_write_keys       = ["wk"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
}

run "sdk_config" {
  assert {
    condition     = output.api_endpoint == "https://abc123.execute-api.us-east-1.amazonaws.com"
    error_message = "api_endpoint must be the API's base URL."
  }

  assert {
    condition = output.sdk_config == {
      python  = { host = "https://abc123.execute-api.us-east-1.amazonaws.com" }
      node    = { host = "https://abc123.execute-api.us-east-1.amazonaws.com", path = "/v1/batch" }
      browser = { apiHost = "abc123.execute-api.us-east-1.amazonaws.com/v1", cdnURL = "https://abc123.execute-api.us-east-1.amazonaws.com" }
      mobile  = { apiHost = "abc123.execute-api.us-east-1.amazonaws.com/v1", cdnHost = "abc123.execute-api.us-east-1.amazonaws.com/v1" }
    }
    error_message = "sdk_config must give each SDK the exact host values that reach the registry."
  }

  assert {
    condition     = output.function_url == ""
    error_message = "function_url must be empty with the default endpoint_type."
  }
}

run "sdk_config_with_a_function_url" {
  variables {
    endpoint_type = "function_url"
  }

  assert {
    condition     = output.api_endpoint == "https://xyz789.lambda-url.us-east-1.on.aws" && output.function_url == "https://xyz789.lambda-url.us-east-1.on.aws/"
    error_message = "api_endpoint must be the function URL without its trailing slash."
  }

  assert {
    condition = output.sdk_config == {
      python  = { host = "https://xyz789.lambda-url.us-east-1.on.aws" }
      node    = { host = "https://xyz789.lambda-url.us-east-1.on.aws", path = "/v1/batch" }
      browser = { apiHost = "xyz789.lambda-url.us-east-1.on.aws/v1", cdnURL = "https://xyz789.lambda-url.us-east-1.on.aws" }
      mobile  = { apiHost = "xyz789.lambda-url.us-east-1.on.aws/v1", cdnHost = "xyz789.lambda-url.us-east-1.on.aws/v1" }
    }
    error_message = "sdk_config must point every SDK at the function URL."
  }

  assert {
    condition     = output.api_execution_arn == "" && output.api_access_log_group_name == ""
    error_message = "Without an HTTP API, its outputs must be empty."
  }
}
