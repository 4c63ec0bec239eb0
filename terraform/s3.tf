################################################################################
# Schema bucket
################################################################################

resource "aws_s3_bucket" "this" {
  count = var.create_bucket ? 1 : 0

  #checkov:skip=CKV_AWS_18:Access logs would need a second bucket; the schemas are published by Terraform and read only by the Lambda role
  #checkov:skip=CKV_AWS_144:Schemas are rebuilt from the Reflekt project in git; cross-region replication adds cost, not recovery
  #checkov:skip=CKV_AWS_145:SSE-S3 is used so etag equals the file's MD5 and unchanged schemas are not re-uploaded; SSE-KMS would also need kms:Decrypt for the Lambda
  #checkov:skip=CKV2_AWS_62:Nothing reacts to schema uploads; the Lambda re-reads schemas when its cache TTL expires
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-" : null
  force_destroy = var.bucket_force_destroy

  tags = var.tags
}

data "aws_s3_bucket" "existing" {
  count = var.create_bucket ? 0 : 1

  bucket = var.bucket_name

  lifecycle {
    precondition {
      condition     = var.bucket_name != null
      error_message = "bucket_name is required when create_bucket is false: name the existing bucket that holds the schemas."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  count = var.create_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  count = var.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count = var.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

data "aws_iam_policy_document" "bucket" {
  count = var.create_bucket ? 1 : 0

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.bucket_arn, "${local.bucket_arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  count = var.create_bucket ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  policy = data.aws_iam_policy_document.bucket[0].json

  # S3 rejects a bucket policy while the public access block is still being applied.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
