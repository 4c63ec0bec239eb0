variable "region" {
  description = "AWS region to deploy to"
  type        = string
  default     = "eu-west-1"
}

variable "schemas_dir" {
  description = "A Reflekt project's schemas/ folder to publish, relative to this directory; null publishes nothing"
  type        = string
  default     = "../../../examples/reflekt-project/schemas"
}

variable "registry_write_keys" {
  description = "Write keys the registry accepts from your apps"
  type        = list(string)
  sensitive   = true
}

variable "valid_segment_write_key" {
  description = "Write key of the Segment source for events that match their schemas"
  type        = string
  sensitive   = true
}

variable "invalid_segment_write_key" {
  description = "Write key of the Segment source for events that fail validation"
  type        = string
  sensitive   = true
}

variable "segment_api_host" {
  description = "Segment Tracking API base URL; https://events.eu1.segmentapis.com for EU workspaces"
  type        = string
  default     = "https://api.segment.io"
}

variable "endpoint_type" {
  description = "\"http_api\" (API Gateway) or \"function_url\" (a Lambda function URL, cheaper per request)"
  type        = string
  default     = "http_api"
}
