# The registry on the company's own domain: each combination of domain_name, certificate_arn and route53_zone_id.
# Runs that need outputs apply against the mocked provider (nothing is created); its API endpoint and the domain's
# target are fixed in mocks/aws.tfmock.hcl. tests/test_terraform.py checks the message of each refusal.

mock_provider "aws" {
  source = "./tests/mocks"
}

# A custom domain with its certificate in the mocked region; each run changes what it is about.
variables {
  registry_write_keys       = ["wk"]
  valid_segment_write_key   = "valid-key"
  invalid_segment_write_key = "invalid-key"
  domain_name               = "events.example.com"
  certificate_arn           = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
}

run "without_a_domain" {
  variables {
    domain_name     = null
    certificate_arn = null
  }

  assert {
    condition     = length(aws_apigatewayv2_domain_name.this) == 0 && length(aws_apigatewayv2_api_mapping.this) == 0 && length(aws_route53_record.domain) == 0
    error_message = "Without domain_name no custom domain, mapping or DNS record may be created."
  }

  assert {
    condition = (
      output.api_endpoint == "https://abc123.execute-api.us-east-1.amazonaws.com"
      && output.dns_record == null
      && output.domain_name_target_domain_name == null
      && output.domain_name_hosted_zone_id == null
    )
    error_message = "Without domain_name the outputs must name the execute-api endpoint and no DNS record."
  }
}

run "domain_without_a_zone" {
  assert {
    condition = (
      aws_apigatewayv2_domain_name.this[0].domain_name == "events.example.com"
      && aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].certificate_arn == var.certificate_arn
      && aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].endpoint_type == "REGIONAL"
      && aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0].security_policy == "TLS_1_2"
    )
    error_message = "The custom domain must be regional, use certificate_arn and accept TLS 1.2 or later only."
  }

  assert {
    condition = (
      aws_apigatewayv2_api_mapping.this[0].api_id == aws_apigatewayv2_api.this[0].id
      && aws_apigatewayv2_api_mapping.this[0].domain_name == aws_apigatewayv2_domain_name.this[0].id
      && aws_apigatewayv2_api_mapping.this[0].stage == aws_apigatewayv2_stage.this[0].id
      && aws_apigatewayv2_api_mapping.this[0].api_mapping_key == null
    )
    error_message = "The domain must map the API's stage at its root, so SDK hosts carry no path."
  }

  assert {
    condition     = length(aws_route53_record.domain) == 0
    error_message = "Without route53_zone_id no DNS record may be created."
  }

  assert {
    condition = output.dns_record == {
      name  = "events.example.com"
      type  = "CNAME"
      value = "d-xyz789.execute-api.us-east-1.amazonaws.com"
    }
    error_message = "Without route53_zone_id, dns_record must name the CNAME to create."
  }

  assert {
    condition = (
      output.domain_name_target_domain_name == "d-xyz789.execute-api.us-east-1.amazonaws.com"
      && output.domain_name_hosted_zone_id == "Z1UJRXOUMOOFQ8"
    )
    error_message = "The domain's target and its zone must be output for an alias record made elsewhere."
  }

  assert {
    condition     = output.api_endpoint == "https://events.example.com"
    error_message = "api_endpoint must be the custom domain."
  }

  assert {
    # outputs.tftest.hcl checks each value on the execute-api hostname; here every one must name the domain instead.
    condition     = output.sdk_config == jsondecode(replace(jsonencode(run.without_a_domain.sdk_config), "abc123.execute-api.us-east-1.amazonaws.com", "events.example.com"))
    error_message = "Every sdk_config entry must point at the custom domain."
  }
}

run "domain_with_a_route53_zone" {
  variables {
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
  }

  assert {
    condition = (
      aws_route53_record.domain[0].zone_id == "Z0123456789ABCDEFGHIJ"
      && aws_route53_record.domain[0].name == "events.example.com"
      && aws_route53_record.domain[0].type == "A"
    )
    error_message = "With route53_zone_id the module must create the domain's A record in that zone."
  }

  assert {
    condition = (
      one(aws_route53_record.domain[0].alias).name == "d-xyz789.execute-api.us-east-1.amazonaws.com"
      && one(aws_route53_record.domain[0].alias).zone_id == "Z1UJRXOUMOOFQ8"
    )
    error_message = "The A record must be an alias of the domain's API Gateway target."
  }

  assert {
    condition     = output.dns_record == null
    error_message = "dns_record must be null when the module created the record."
  }

  assert {
    condition     = output.sdk_config == run.domain_without_a_zone.sdk_config
    error_message = "The outputs must point at the custom domain whoever creates its DNS record."
  }
}

run "rejects_a_certificate_without_a_domain" {
  command = plan

  variables {
    domain_name = null
  }

  expect_failures = [var.certificate_arn]
}

run "rejects_a_domain_without_a_certificate" {
  command = plan

  variables {
    certificate_arn = null
  }

  expect_failures = [var.certificate_arn]
}

run "rejects_a_domain_with_a_function_url" {
  command = plan

  variables {
    endpoint_type = "function_url"
  }

  expect_failures = [var.domain_name]
}

run "rejects_a_zone_without_a_domain" {
  command = plan

  variables {
    domain_name     = null
    certificate_arn = null
    route53_zone_id = "Z0123456789ABCDEFGHIJ"
  }

  expect_failures = [var.route53_zone_id]
}

# One malformed value per run: a variable that failed its own validation is not used by the others'.
run "rejects_a_domain_that_is_not_a_hostname" {
  command = plan

  variables {
    domain_name = "https://events.example.com/"
  }

  expect_failures = [var.domain_name]
}

# Internationalised top-level domains (.рф, .中国) are spelled in punycode, "xn--" and letters, digits, hyphens.
run "accepts_a_punycode_top_level_domain" {
  command = plan

  variables {
    domain_name = "events.example.xn--p1ai"
  }

  assert {
    condition     = aws_apigatewayv2_domain_name.this[0].domain_name == "events.example.xn--p1ai"
    error_message = "A hostname under an internationalised top-level domain must be accepted as given."
  }
}

run "rejects_a_top_level_domain_with_digits" {
  command = plan

  variables {
    domain_name = "events.example.c0m"
  }

  expect_failures = [var.domain_name]
}

run "rejects_a_punycode_top_level_domain_ending_in_a_hyphen" {
  command = plan

  variables {
    domain_name = "events.example.xn--p1ai-"
  }

  expect_failures = [var.domain_name]
}

run "rejects_an_empty_punycode_top_level_domain" {
  command = plan

  variables {
    domain_name = "events.example.xn--"
  }

  expect_failures = [var.domain_name]
}

run "rejects_a_certificate_that_is_not_from_acm" {
  command = plan

  variables {
    certificate_arn = "arn:aws:iam::123456789012:server-certificate/events"
  }

  expect_failures = [var.certificate_arn]
}

run "rejects_a_zone_id_with_its_path" {
  command = plan

  variables {
    route53_zone_id = "/hostedzone/Z0123456789ABCDEFGHIJ"
  }

  expect_failures = [var.route53_zone_id]
}

run "rejects_a_certificate_from_another_region" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
  }

  expect_failures = [aws_apigatewayv2_domain_name.this]
}
