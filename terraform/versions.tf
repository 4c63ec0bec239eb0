terraform {
  # terraform test's mock_provider, used by tests/, needs 1.7; validations that refer to another variable (variables.tf's
  # domain_name, certificate_arn, route53_zone_id and reserved_concurrent_executions) need 1.9.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.80 knows the python3.13 runtime.
      version = ">= 5.80, < 7.0"
    }
  }
}
