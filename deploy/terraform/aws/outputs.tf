output "redis_url" {
  description = "The cluster's configuration endpoint, as each service's <SERVICE>_REDIS_URL."
  value       = "rediss://${aws_elasticache_replication_group.redis.configuration_endpoint_address}:6379"
}

output "redis_password_secrets" {
  description = "Secrets Manager ARN of each ACL user's password, by user name."
  value       = { for name, s in aws_secretsmanager_secret.redis : name => s.arn }
}

output "eks_cluster_name" {
  description = "The EKS cluster the services are deployed to (deploy/kubernetes)."
  value       = aws_eks_cluster.parley.name
}

output "node_security_group_id" {
  description = "The nodes' security group (the only one Redis accepts)."
  value       = aws_security_group.nodes.id
}
