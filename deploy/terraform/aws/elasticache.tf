# The Redis Cluster: cluster mode (var.redis_shards masters, each with replicas in other zones),
# TLS in transit, encryption at rest with a key of its own, Multi-AZ automatic failover, daily
# snapshots, slow and engine logs in CloudWatch, and one ACL user per service with the rights of
# deploy/redis/users.acl (acl.tf.json: generated from the contracts by `parley acl export`).

resource "aws_kms_key" "parley" {
  description             = "${var.name}: ElastiCache at rest, Secrets Manager, EKS secrets, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:The account root must administer its own key (AWS's default key policy)
  # checkov:skip=CKV_AWS_111:The account root must administer its own key (AWS's default key policy)
  # checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*")
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

resource "aws_elasticache_parameter_group" "redis" {
  name   = "${var.name}-redis"
  family = "${var.redis_engine}${split(".", var.redis_engine_version)[0]}"
  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }
  # Evict nothing: the streams and sessions are data, not cache (caches carry TTLs).
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
  tags = var.tags
}

resource "random_password" "redis" {
  for_each         = local.redis_access_strings
  length           = 48
  special          = false
  override_special = ""
}

resource "aws_elasticache_user" "service" {
  for_each      = local.redis_access_strings
  user_id       = "${var.name}-${each.key}"
  user_name     = each.key
  engine        = var.redis_engine
  access_string = each.value
  authentication_mode {
    type      = "password"
    passwords = [random_password.redis[each.key].result]
  }
  tags = var.tags
}

# Every user group needs a user named "default"; this one cannot log in, as on the compose fleet.
resource "aws_elasticache_user" "default" {
  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = var.redis_engine
  access_string = "off resetkeys resetchannels -@all"
  authentication_mode {
    type      = "password"
    passwords = [random_password.default.result]
  }
  tags = var.tags
}

resource "random_password" "default" {
  length  = 48
  special = false
}

resource "aws_elasticache_user_group" "parley" {
  user_group_id = var.name
  engine        = var.redis_engine
  user_ids      = concat([aws_elasticache_user.default.user_id], [for u in aws_elasticache_user.service : u.user_id])
  tags          = var.tags
}

resource "aws_cloudwatch_log_group" "redis" {
  for_each          = toset(["slow-log", "engine-log"])
  name              = "/parley/${var.name}/redis/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.parley.arn
  tags              = var.tags
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id       = var.name
  description                = "Parley Redis Cluster"
  engine                     = var.redis_engine
  engine_version             = var.redis_engine_version
  node_type                  = var.redis_node_type
  port                       = 6379
  parameter_group_name       = aws_elasticache_parameter_group.redis.name
  num_node_groups            = var.redis_shards
  replicas_per_node_group    = var.redis_replicas_per_shard
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.parley.arn
  user_group_ids             = [aws_elasticache_user_group.parley.user_group_id]
  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  dynamic "log_delivery_configuration" {
    for_each = aws_cloudwatch_log_group.redis
    content {
      destination      = log_delivery_configuration.value.name
      destination_type = "cloudwatch-logs"
      log_format       = "json"
      log_type         = log_delivery_configuration.key
    }
  }
  tags = var.tags
}

# Each user's password for the services (Kubernetes: the Secret parley-<service>, key
# redis-password, e.g. through External Secrets from here).
resource "aws_secretsmanager_secret" "redis" {
  # checkov:skip=CKV2_AWS_57:Rotation means ModifyUser on ElastiCache and a rolling restart (docs/kubernetes.md); no rotation Lambda is shipped
  for_each                = local.redis_access_strings
  name                    = "${var.name}/redis/${each.key}"
  description             = "Parley: password of the Redis ACL user ${each.key}"
  kms_key_id              = aws_kms_key.parley.arn
  recovery_window_in_days = 7
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "redis" {
  for_each      = local.redis_access_strings
  secret_id     = aws_secretsmanager_secret.redis[each.key].id
  secret_string = random_password.redis[each.key].result
}
