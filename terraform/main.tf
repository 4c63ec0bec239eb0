data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # ARNs are built from names rather than read from resources, so the IAM policies are known (and reviewable) at plan time.
  partition = data.aws_partition.current.partition

  bucket_name   = var.create_bucket ? aws_s3_bucket.this[0].bucket : data.aws_s3_bucket.existing[0].bucket
  bucket_arn    = "arn:${local.partition}:s3:::${local.bucket_name}"
  bucket_region = var.create_bucket ? data.aws_region.current.name : data.aws_s3_bucket.existing[0].region

  # The index of the schema names under schema_prefix, where publish writes it too (plans.index_key): one per
  # prefix, so registries sharing a bucket under different prefixes keep their own.
  schema_index_key = "registry/${var.schema_prefix}index.json"

  lambda_log_group_name = "/aws/lambda/${var.name}"
  lambda_log_group_arn  = "arn:${local.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:log-group:${local.lambda_log_group_name}"
}
