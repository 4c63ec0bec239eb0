# Mocks fill computed attributes with random strings. These give the module valid policy JSON, a partition,
# region and account to build ARNs from, and the ARNs and endpoint that other resources and outputs need when a run applies.

mock_data "aws_iam_policy_document" {
  defaults = {
    json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition = "aws"
  }
}

mock_data "aws_region" {
  defaults = {
    name = "us-east-1"
  }
}

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
  }
}

mock_data "aws_s3_bucket" {
  defaults = {
    region = "eu-west-1"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/reflekt-registry"
  }
}

mock_resource "aws_cloudwatch_log_group" {
  defaults = {
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:reflekt-registry"
  }
}

# outputs.tftest.hcl derives the SDK settings from this endpoint.
mock_resource "aws_apigatewayv2_api" {
  defaults = {
    api_endpoint  = "https://abc123.execute-api.us-east-1.amazonaws.com"
    execution_arn = "arn:aws:execute-api:us-east-1:123456789012:abc123"
  }
}

# endpoint.tftest.hcl and outputs.tftest.hcl derive the SDK settings from this URL (AWS prints it with a slash).
mock_resource "aws_lambda_function_url" {
  defaults = {
    function_url = "https://xyz789.lambda-url.us-east-1.on.aws/"
  }
}

# An empty bucket, unless a run overrides the listing to stand for schemas published earlier.
mock_data "aws_s3_objects" {
  defaults = {
    keys = []
  }
}

# domain.tftest.hcl checks that DNS and the outputs point at this target.
mock_resource "aws_apigatewayv2_domain_name" {
  defaults = {
    # An object, not a list: mocks fill each element of the configured block from it.
    domain_name_configuration = {
      target_domain_name = "d-xyz789.execute-api.us-east-1.amazonaws.com"
      hosted_zone_id     = "Z1UJRXOUMOOFQ8"
    }
  }
}

# spool.tf's schedule targets the function and permits its rule by ARN; the provider checks both are ARNs.
mock_resource "aws_lambda_function" {
  defaults = {
    arn = "arn:aws:lambda:us-east-1:123456789012:function:reflekt-registry"
  }
}

mock_resource "aws_cloudwatch_event_rule" {
  defaults = {
    arn = "arn:aws:events:us-east-1:123456789012:rule/reflekt-registry-replay"
  }
}
