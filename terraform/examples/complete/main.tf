provider "aws" {
  region = var.region
}

module "reflekt_registry" {
  source = "../../"

  name = "reflekt-registry-example"

  # Paths are relative to this directory; run ../../../build.sh first.
  lambda_zip_path      = "../../../dist/reflekt-registry.zip"
  schemas_dir          = var.schemas_dir
  schemas_check_python = "../../../.venv/bin/python"
  bucket_force_destroy = true

  registry_write_keys       = var.registry_write_keys
  valid_segment_write_key   = var.valid_segment_write_key
  invalid_segment_write_key = var.invalid_segment_write_key
  sources                   = var.sources
  invalid_write_key         = var.invalid_write_key
  segment_api_host          = var.segment_api_host

  # "function_url" drops API Gateway (and its per-request charge); reserved concurrency is then the only throttle.
  endpoint_type = var.endpoint_type

  memory_size                    = 256
  reserved_concurrent_executions = 5
  log_retention_in_days          = 7
  throttling_burst_limit         = 50
  throttling_rate_limit          = 20

  # First-party domain: serve the registry on your own subdomain so ad blockers leave browser events alone.
  # The certificate must be an ACM certificate for that name in var.region. Without route53_zone_id, create the
  # record the dns_record output names with your DNS provider.
  # domain_name     = "events.example.com"
  # certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  # route53_zone_id = "Z0123456789ABCDEFGHIJ"

  tags = {
    Project = "reflekt-registry"
  }
}
