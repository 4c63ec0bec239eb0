################################################################################
# Custom domain
################################################################################

locals {
  create_domain = var.domain_name != null

  # What SDKs are given: the company's own domain when one is set (first-party, so ad blockers let it through),
  # otherwise the hostname AWS assigned.
  client_endpoint = local.create_domain ? "https://${var.domain_name}" : local.api_endpoint
  client_domain   = trimprefix(local.client_endpoint, "https://")

  # Where DNS must point the domain: API Gateway's regional hostname for it, and that hostname's Route 53 zone.
  domain_target = try(aws_apigatewayv2_domain_name.this[0].domain_name_configuration[0], null)
}

resource "aws_apigatewayv2_domain_name" "this" {
  count = local.create_domain ? 1 : 0

  domain_name = var.domain_name

  domain_name_configuration {
    certificate_arn = var.certificate_arn
    # Regional: the certificate lives in the API's region; an edge-optimised domain would need CloudFront's us-east-1.
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }

  tags = var.tags

  lifecycle {
    precondition {
      # API Gateway only reports this on apply, after the rest has been created; the ARN names the region.
      condition     = split(":", var.certificate_arn)[3] == data.aws_region.current.name
      error_message = "certificate_arn is in ${split(":", var.certificate_arn)[3]}, but the API is in ${data.aws_region.current.name}: a regional custom domain needs an ACM certificate issued in (or imported into) the API's own region."
    }
  }
}

resource "aws_apigatewayv2_api_mapping" "this" {
  count = local.create_domain ? 1 : 0

  api_id      = aws_apigatewayv2_api.this[0].id
  domain_name = aws_apigatewayv2_domain_name.this[0].id
  # No mapping key: the API is served at the domain's root, so SDK hosts carry no path, as on the execute-api hostname.
  stage = aws_apigatewayv2_stage.this[0].id
}

resource "aws_route53_record" "domain" {
  count = local.create_domain && var.route53_zone_id != null ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = local.domain_target.target_domain_name
    zone_id                = local.domain_target.hosted_zone_id
    evaluate_target_health = false
  }
}
