variable "name" {
  description = "Name of the Lambda function, its IAM role, the HTTP API and their log groups; also the prefix of a generated bucket name"
  type        = string
  default     = "reflekt-registry"

  validation {
    # Lower case because it prefixes an S3 bucket name; 36 characters keep that prefix within S3's 37-character bucket_prefix limit.
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,35}$", var.name))
    error_message = "name must be 1-36 characters of lower-case letters, digits and hyphens, starting with a letter or digit."
  }
}

variable "tags" {
  description = "Tags to add to every resource that takes tags"
  type        = map(string)
  default     = {}
}

################################################################################
# Schema bucket
################################################################################

variable "create_bucket" {
  description = "Whether to create the schema bucket. Set to false to read schemas from an existing bucket named by `bucket_name`"
  type        = bool
  default     = true
}

variable "bucket_name" {
  description = "Name of the schema bucket. When `create_bucket` is true, null generates a unique name starting with `name`; when false, the name of the existing bucket (required)"
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 characters of lower-case letters, digits, dots and hyphens."
  }
}

variable "bucket_force_destroy" {
  description = "Whether `terraform destroy` may delete the created bucket while it still holds schemas (and their old versions)"
  type        = bool
  default     = false
}

variable "schema_prefix" {
  description = "Key prefix under which the bucket holds the Reflekt project's `schemas/` folder. The Lambda may read only below it"
  type        = string
  default     = "schemas/"

  validation {
    condition     = endswith(var.schema_prefix, "/") && !startswith(var.schema_prefix, "/") && length(var.schema_prefix) > 1
    error_message = "schema_prefix must be a non-empty key prefix that ends with \"/\" and does not start with one, such as \"schemas/\"."
  }

  # The schema index publish writes and the configuration document are read as what they are, never as schemas.
  validation {
    condition     = !startswith("registry/${var.schema_prefix}index.json", var.schema_prefix) && !startswith(var.config_key, var.schema_prefix)
    error_message = "schema_prefix (\"${var.schema_prefix}\") holds registry/${var.schema_prefix}index.json (the schema index) or config_key (\"${var.config_key}\", the configuration document): give the schemas a folder of their own, such as \"schemas/\"."
  }

  # Checked here rather than on spool_prefix: validations that referred to each other's variable would form a cycle.
  validation {
    condition     = !startswith(var.spool_prefix, var.schema_prefix) && !startswith(var.schema_prefix, var.spool_prefix)
    error_message = "schema_prefix (\"${var.schema_prefix}\") and spool_prefix (\"${var.spool_prefix}\") overlap: spooled events would mix with schemas, and the Lambda could write where it only reads."
  }
}

variable "spool_prefix" {
  description = "Key prefix in the same bucket where events Segment did not take wait for the replay. The Lambda may write, read and delete only below it"
  type        = string
  default     = "spool/"

  validation {
    condition     = endswith(var.spool_prefix, "/") && !startswith(var.spool_prefix, "/") && length(var.spool_prefix) > 1
    error_message = "spool_prefix must be a non-empty key prefix that ends with \"/\" and does not start with one, such as \"spool/\"."
  }
}

variable "spool_rejected_days" {
  description = "Days a spooled batch that Segment refused (set aside under <spool_prefix>rejected/ for inspection) is kept before it expires. It holds personal data"
  type        = number
  default     = 14

  validation {
    condition     = var.spool_rejected_days >= 1 && floor(var.spool_rejected_days) == var.spool_rejected_days
    error_message = "spool_rejected_days must be a whole number of days, 1 or more."
  }
}

################################################################################
# Schemas
################################################################################

variable "schemas_dir" {
  description = "Path to a Reflekt project's `schemas/` folder, relative to the root module's directory, to publish into the bucket under `schema_prefix` (`.reflekt/` is skipped). Null publishes nothing"
  type        = string
  default     = null

  validation {
    # fileset() finds nothing in a folder that does not exist, so a mistyped path would otherwise publish nothing, silently.
    # coalesce() because || does not short-circuit: fileset(null) would fail.
    condition     = var.schemas_dir == null || length(fileset(coalesce(var.schemas_dir, "."), "**/*.json")) > 0
    error_message = "schemas_dir holds no .json files; point it at a Reflekt project's schemas/ folder (relative paths start from the root module's directory)."
  }
}

variable "schemas_check_python" {
  description = "Python interpreter that runs publish's gate (`python -m reflekt_registry.tools.publish --check`) over `schemas_dir` before any schema is uploaded. It needs the packages in requirements-dev.txt, e.g. `../.venv/bin/python`"
  type        = string
  default     = "python3"
}

variable "schemas_check_bucket" {
  description = "Whether the gate also compares `schemas_dir` with the schemas already in the bucket (published versions unchanged, new MINORs compatible with MINORs only the bucket still has). It reads the bucket with the AWS credentials in Terraform's environment; set false only where those cannot reach it (e.g. a provider that assumes a role), and run `publish --plan` with credentials in CI instead"
  type        = bool
  default     = true
}

variable "schemas_force" {
  description = "Schema ids the gate refuses that are to be published anyway (a changed published version, an incompatible MINOR), each with the reason, which is kept on the object as metadata `reflekt-registry-forced`"
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for reason in values(var.schemas_force) : length(reason) <= 1024 && can(regex("^[ -~]+$", reason))])
    error_message = "Each schemas_force reason must be one line of printable ASCII, 1 to 1024 characters: S3 keeps it in a metadata header."
  }
}

variable "schemas_prune" {
  description = "Schema ids that may leave the bucket: published ids missing from `schemas_dir` stop the plan unless listed here, since apps may still send them. Terraform deletes the listed ones it published; `publish --prune` deletes others"
  type        = list(string)
  default     = []
}

################################################################################
# Lambda function
################################################################################

variable "lambda_zip_path" {
  description = "Path to the deployment zip made by build.sh, relative to the root module's directory. It must exist when Terraform plans"
  type        = string
  default     = "../dist/reflekt-registry.zip"
}

variable "architecture" {
  description = "Instruction set of the Lambda function: arm64 or x86_64. Must match the ARCH the zip was built for"
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\"."
  }
}

variable "memory_size" {
  description = "Memory of the Lambda function in MB (128-10240); CPU grows with it"
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "timeout" {
  description = "Lambda timeout in seconds (1-30). The HTTP API gives up after 30 s, and Segment's Node SDK retries after 10 s, so keep it short"
  type        = number
  default     = 10

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 30 && floor(var.timeout) == var.timeout
    error_message = "timeout must be a whole number of seconds from 1 to 30 (the HTTP API's integration limit)."
  }
}

variable "reserved_concurrent_executions" {
  description = "Concurrent executions reserved for (and capping) the function; -1 leaves it unreserved, which an account with a low concurrency quota needs. With endpoint_type = \"function_url\" this is the only throttle, so -1 is refused there"
  type        = number
  default     = 20

  validation {
    condition     = var.reserved_concurrent_executions >= -1 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "reserved_concurrent_executions must be -1 (unreserved) or a whole number of 0 or more."
  }

  validation {
    condition     = var.endpoint_type != "function_url" || var.reserved_concurrent_executions >= 0
    error_message = "endpoint_type = \"function_url\" needs reserved_concurrent_executions >= 0: a function URL has no throttling, so reserved concurrency is the only cap on load and cost."
  }
}

variable "log_retention_in_days" {
  description = "Days CloudWatch keeps the Lambda logs and the API access logs. Possible values are: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 and 3653"
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "registry_write_keys" {
  description = "Write keys the registry accepts from SDKs (the inbound allowlist) when `sources` is empty: the single source of the zero-configuration setup. Leave empty when `sources` is set"
  type        = list(string)
  default     = []
  sensitive   = true

  validation {
    condition     = alltrue([for key in var.registry_write_keys : can(regex("^[^,\\s]+$", key))])
    error_message = "No key in registry_write_keys may be empty or contain commas or whitespace."
  }
}

variable "valid_segment_write_key" {
  description = "Write key of the Segment source that receives events that match their schemas, when `sources` is empty. Leave null when `sources` is set"
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.valid_segment_write_key == null || length(trimspace(coalesce(var.valid_segment_write_key, " "))) > 0
    error_message = "valid_segment_write_key must not be empty; leave it null when sources are set."
  }
}

variable "invalid_segment_write_key" {
  description = "Write key of the Segment source that receives events that fail validation, annotated with the errors, when `sources` is empty. Leave null when `sources` is set"
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.invalid_segment_write_key == null || length(trimspace(coalesce(var.invalid_segment_write_key, " "))) > 0
    error_message = "invalid_segment_write_key must not be empty; leave it null when sources are set."
  }
}

variable "segment_api_host" {
  description = "Segment Tracking API base URL. Use https://events.eu1.segmentapis.com for EU workspaces"
  type        = string
  default     = "https://api.segment.io"

  validation {
    condition     = can(regex("^https://[^/]+/?$", var.segment_api_host))
    error_message = "segment_api_host must be an https:// URL with no path, such as https://api.segment.io."
  }
}

variable "schema_cache_ttl_seconds" {
  description = "Seconds a warm Lambda keeps a compiled schema before reading it from S3 again; a published schema change takes at most this long to apply"
  type        = number
  default     = 60

  validation {
    condition     = var.schema_cache_ttl_seconds >= 0
    error_message = "schema_cache_ttl_seconds must be zero or more."
  }
}

variable "debug" {
  description = "Whether the Lambda logs at debug level"
  type        = bool
  default     = false
}

################################################################################
# Configuration document: tracking plans, controls and sources
################################################################################

variable "config_key" {
  description = "Key of the configuration document in the bucket. The module writes it when `sources`, `plans` or `controls` is set, and the Lambda re-reads it within `schema_cache_ttl_seconds`"
  type        = string
  default     = "registry/config.json"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.config_key))
    error_message = "config_key must be an object key such as \"registry/config.json\": plain path segments, no leading or trailing \"/\"."
  }
}

variable "plans" {
  description = "Tracking plans every source is held to unless it names its own: `$id` prefixes such as \"jaffle_shop/\". Empty: every schema forms one plan"
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for plan in var.plans : can(regex("^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*/?$", plan))])
    error_message = "Each of plans must be a $id prefix such as \"jaffle_shop/\" or \"segment/demo/\"."
  }
}

variable "controls" {
  description = "Controls every source is held to unless it overrides them (as Segment Protocols' schema configuration): `unplanned_events` (block, allow), `unplanned_properties` (allow, omit), `violations` (block, allow, omit), `common_schema` ({ id, violations = block or allow })"
  type = object({
    unplanned_events     = optional(string)
    unplanned_properties = optional(string)
    violations           = optional(string)
    common_schema = optional(object({
      id         = string
      violations = optional(string)
    }))
  })
  default = {}

  validation {
    condition = (
      contains(["block", "allow"], coalesce(var.controls.unplanned_events, "block"))
      && contains(["allow", "omit"], coalesce(var.controls.unplanned_properties, "allow"))
      && contains(["block", "allow", "omit"], coalesce(var.controls.violations, "block"))
      && contains(["block", "allow"], coalesce(try(var.controls.common_schema.violations, null), "block"))
    )
    error_message = "controls: unplanned_events must be block or allow; unplanned_properties allow or omit; violations block, allow or omit; common_schema.violations block or allow."
  }
}

variable "sources" {
  description = <<-EOT
    Apps behind the registry, by source name, each keeping its own Segment source. Each lists the inbound `write_keys` its apps send; optionally its own `plans` and `controls` (merged key by key over the module's), a `valid_write_key` (null: pass-through, each valid event goes on under the key the SDK sent) and an `invalid_write_key` (null: `invalid_write_key` of the module). Empty: the single source of `registry_write_keys` and the two Segment keys
  EOT
  type = map(object({
    write_keys = list(string)
    plans      = optional(list(string))
    controls = optional(object({
      unplanned_events     = optional(string)
      unplanned_properties = optional(string)
      violations           = optional(string)
      common_schema = optional(object({
        id         = string
        violations = optional(string)
      }))
    }))
    valid_write_key   = optional(string)
    invalid_write_key = optional(string)
  }))
  default   = {}
  sensitive = true

  validation {
    condition     = alltrue([for name in keys(var.sources) : can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", name))])
    error_message = "Each source name must be 1-64 letters, digits, \"_\", \"-\" or \".\", starting with a letter or digit."
  }

  validation {
    condition = alltrue(flatten([for source in values(var.sources) : [
      length(source.write_keys) > 0,
      [for key in concat(source.write_keys, compact([source.valid_write_key, source.invalid_write_key])) : can(regex("^[^,\\s]{1,256}$", key))],
    ]]))
    error_message = "Each source must list at least one write key, and no write key may be empty, longer than 256 characters, or contain commas or whitespace."
  }

  validation {
    condition = alltrue(flatten([for source in values(var.sources) : [
      [for plan in coalesce(source.plans, []) : can(regex("^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*/?$", plan))],
      source.controls == null || (
        contains(["block", "allow"], coalesce(try(source.controls.unplanned_events, null), "block"))
        && contains(["allow", "omit"], coalesce(try(source.controls.unplanned_properties, null), "allow"))
        && contains(["block", "allow", "omit"], coalesce(try(source.controls.violations, null), "block"))
        && contains(["block", "allow"], coalesce(try(source.controls.common_schema.violations, null), "block"))
      ),
    ]]))
    error_message = "Each source's plans must be $id prefixes such as \"jaffle_shop/\", and its controls must take the values the module's controls take."
  }
}

variable "invalid_write_key" {
  description = "Write key of the Segment source that receives the blocked and invalid events of every source that names no `invalid_write_key` of its own"
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.invalid_write_key == null || can(regex("^[^,\\s]{1,256}$", coalesce(var.invalid_write_key, "x")))
    error_message = "invalid_write_key must not be empty or contain commas or whitespace."
  }
}

variable "default_source" {
  description = "Name of the source whose plans, controls and destinations apply to inbound keys no source lists. Null: those keys get 401"
  type        = string
  default     = null
}

################################################################################
# Endpoint (HTTP API or function URL)
################################################################################

variable "endpoint_type" {
  description = "How clients reach the function: \"http_api\" (an API Gateway HTTP API, with stage throttling and access logs) or \"function_url\" (a Lambda function URL: no API Gateway charge, no throttling but the function's reserved concurrency, no access logs)"
  type        = string
  default     = "http_api"

  validation {
    condition     = contains(["http_api", "function_url"], var.endpoint_type)
    error_message = "endpoint_type must be \"http_api\" or \"function_url\"."
  }
}

variable "cors_allow_origins" {
  description = "Origins allowed to call the registry from a browser (CORS), for either endpoint type. The default lets analytics.js on any site send events"
  type        = list(string)
  default     = ["*"]
}

variable "cors_max_age" {
  description = "Seconds a browser may cache a CORS preflight answer (0-86400)"
  type        = number
  default     = 7200

  validation {
    condition     = var.cors_max_age >= 0 && var.cors_max_age <= 86400
    error_message = "cors_max_age must be from 0 to 86400 seconds."
  }
}

variable "throttling_burst_limit" {
  description = "Requests the API accepts in a burst before answering 429 (SDKs retry those). HTTP API only: a function URL is capped by reserved_concurrent_executions alone"
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 0
    error_message = "throttling_burst_limit must be zero or more."
  }
}

variable "throttling_rate_limit" {
  description = "Steady requests per second the API accepts. Segment asks for at most 1,000 per second per workspace. HTTP API only"
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit >= 0
    error_message = "throttling_rate_limit must be zero or more."
  }
}

################################################################################
# Custom domain
################################################################################

variable "domain_name" {
  description = "Your own (sub)domain for the registry, e.g. events.example.com, so browsers send first-party requests that ad blockers leave alone. Null keeps the execute-api hostname. Needs `certificate_arn`"
  type        = string
  default     = null

  validation {
    # Lower case, so the outputs spell the host exactly as clients, certificates and the settings document will.
    # The top-level domain is letters, or punycode for an internationalised one ("xn--p1ai" is .рф): "xn--" and up
    # to 59 letters, digits and hyphens, ending in a letter or digit, within a label's 63 characters.
    # coalesce() because || does not short-circuit: length(null) would fail. 253 is DNS's limit on a whole name.
    condition     = var.domain_name == null || (can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+([a-z]{2,63}|xn--[a-z0-9]([a-z0-9-]{0,57}[a-z0-9])?)$", var.domain_name)) && length(coalesce(var.domain_name, "x")) <= 253)
    error_message = "domain_name must be a lower-case hostname such as events.example.com (an internationalised name in punycode, such as events.example.xn--p1ai), with no scheme, port, path or trailing dot."
  }

  validation {
    # A function URL cannot take a custom domain itself; that needs a CloudFront distribution in front, which this module does not build.
    condition     = var.domain_name == null || var.endpoint_type == "http_api"
    error_message = "domain_name is not supported with endpoint_type = \"function_url\": a Lambda function URL takes a custom domain only through a CloudFront distribution, which this module does not create. Use endpoint_type = \"http_api\" or leave domain_name unset."
  }
}

variable "certificate_arn" {
  description = "ARN of the ACM certificate for `domain_name` (or a wildcard covering it), issued or imported in the same region as the API: a regional custom domain cannot use a us-east-1 CloudFront certificate from another region"
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN, such as arn:aws:acm:eu-west-1:123456789012:certificate/<id>."
  }

  # Both pairing checks live here: validations that referred to each other's variable would form a cycle.
  validation {
    condition     = var.certificate_arn != null || var.domain_name == null
    error_message = "certificate_arn is required when domain_name is set: the ARN of an ACM certificate for that name, issued in the API's region."
  }

  validation {
    condition     = var.certificate_arn == null || var.domain_name != null
    error_message = "certificate_arn is set but domain_name is not: set domain_name to the name the certificate covers, or remove certificate_arn."
  }
}

variable "route53_zone_id" {
  description = "ID of the Route 53 hosted zone holding `domain_name`, to create its alias record. Null creates no record: the `dns_record` output says which one to create with your DNS provider"
  type        = string
  default     = null

  validation {
    condition     = var.route53_zone_id == null || can(regex("^[A-Z0-9]{1,32}$", var.route53_zone_id))
    error_message = "route53_zone_id must be a Route 53 hosted zone ID such as Z0123456789ABCDEFGHIJ (without the /hostedzone/ prefix)."
  }

  validation {
    condition     = var.route53_zone_id == null || var.domain_name != null
    error_message = "route53_zone_id is set but domain_name is not: the zone is only used for the custom domain's alias record."
  }
}

################################################################################
# Alarms
################################################################################

variable "create_alarms" {
  description = "Whether to create CloudWatch alarms on the share of invalid events, forwarding latency, the spool's age and batches Segment refused"
  type        = bool
  default     = true
}

variable "alarm_actions" {
  description = "ARNs (e.g. SNS topics) notified when an alarm fires or clears"
  type        = list(string)
  default     = []
}

variable "invalid_events_alarm_percent" {
  description = "Alarm when more than this percentage of forwarded events is invalid"
  type        = number
  default     = 5

  validation {
    condition     = var.invalid_events_alarm_percent >= 0 && var.invalid_events_alarm_percent < 100
    error_message = "invalid_events_alarm_percent must be at least 0 and below 100."
  }
}

variable "forward_latency_alarm_ms" {
  description = "Alarm when the p99 time to forward a request's events to Segment exceeds this many milliseconds"
  type        = number
  # Half the forwarder's 6 s retry budget: Segment is retrying or slow well before clients see 503s.
  default = 3000
}

variable "spool_age_alarm_seconds" {
  description = "Alarm when the oldest spooled event has waited longer than this many seconds for Segment, or when the replay stops reporting"
  type        = number
  # Fifteen one-minute drains: Segment has been refusing events for a quarter of an hour, or the replay is stuck.
  default = 900

  validation {
    condition     = var.spool_age_alarm_seconds >= 60
    error_message = "spool_age_alarm_seconds must be at least 60: the spool is drained once a minute, so younger objects are normal."
  }
}
