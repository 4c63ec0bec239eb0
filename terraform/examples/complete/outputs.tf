output "api_endpoint" {
  description = "Base URL of the registry"
  value       = module.reflekt_registry.api_endpoint
}

output "sdk_config" {
  description = "What to set in each Segment SDK so it sends to the registry"
  value       = module.reflekt_registry.sdk_config
}

output "dns_record" {
  description = "The DNS record to create for a custom domain when the module did not create it; null otherwise"
  value       = module.reflekt_registry.dns_record
}

output "bucket_name" {
  description = "Bucket holding the schemas"
  value       = module.reflekt_registry.bucket_name
}

output "schema_keys" {
  description = "S3 keys of the published schemas"
  value       = module.reflekt_registry.schema_keys
}
