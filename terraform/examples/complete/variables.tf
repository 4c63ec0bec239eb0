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
  description = "Write keys the registry accepts from your apps (one-pair setup; leave empty with sources)"
  type        = list(string)
  default     = []
  sensitive   = true
}

variable "valid_segment_write_key" {
  description = "Write key of the Segment source for events that match their schemas (one-pair setup)"
  type        = string
  default     = null
  sensitive   = true
}

variable "invalid_segment_write_key" {
  description = "Write key of the Segment source for events that fail validation (one-pair setup)"
  type        = string
  default     = null
  sensitive   = true
}

variable "sources" {
  description = "Apps behind the registry, each keeping its own Segment source; see the module's `sources` variable"
  type = map(object({
    write_keys        = list(string)
    plans             = optional(list(string))
    valid_write_key   = optional(string)
    invalid_write_key = optional(string)
  }))
  default   = {}
  sensitive = true
}

variable "invalid_write_key" {
  description = "Write key of the Segment source for the invalid events of sources that name none of their own"
  type        = string
  default     = null
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
