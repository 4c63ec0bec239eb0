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
}
