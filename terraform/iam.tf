################################################################################
# IAM
################################################################################

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume_role.json

  tags = var.tags
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "ReadSchemas"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${var.schema_prefix}*"]
  }

  # The index of schema names publish writes (registry/<schema_prefix>index.json), which spares the Lambda a listing
  # per TTL.
  statement {
    sid       = "ReadSchemaIndex"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/${local.schema_index_key}"]
  }

  dynamic "statement" {
    for_each = local.config_enabled ? [var.config_key] : []

    content {
      sid       = "ReadConfig"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = ["${local.bucket_arn}/${statement.value}"]
    }
  }

  # The replay lists the spool; and without ListBucket S3 answers 403 instead of 404 for a schema, the index or the
  # document that does not exist (a bucket filled by `aws s3 sync` has no index: a 403 would read as an outage). One
  # statement for both, its s3:prefix condition naming each prefix and key and nothing else.
  statement {
    sid       = "ListOwnPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = concat(["${var.schema_prefix}*", local.schema_index_key], local.config_enabled ? [var.config_key] : [], ["${var.spool_prefix}*"])
    }
  }

  # The spool: write what Segment did not take, read and delete it when replaying, and hold the drain lock.
  statement {
    sid       = "UseSpool"
    effect    = "Allow"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${var.spool_prefix}*"]
  }

  # lambda.tf creates the log group (with a retention), so the function needs no logs:CreateLogGroup.
  statement {
    sid       = "WriteOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.lambda_log_group_arn}:*"]
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "${var.name}-schemas-spool-and-logs"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}
