variable "name" {
  description = "Name prefix of every resource (e.g. parley-prod)."
  type        = string
  default     = "parley"
}

variable "vpc_id" {
  description = "The VPC the subnets are created in."
  type        = string
}

variable "availability_zones" {
  description = "One private subnet per zone; at least two, for Multi-AZ failover."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "private_subnet_cidrs" {
  description = "The private subnets' CIDRs, one per availability zone, inside the VPC."
  type        = list(string)
}

variable "redis_engine" {
  description = "valkey or redis."
  type        = string
  default     = "valkey"
}

variable "redis_engine_version" {
  description = "Engine version (7.2 or later: ACL users with key and channel patterns)."
  type        = string
  default     = "8.0"
}

variable "redis_node_type" {
  description = "Node type of every shard member (docs/performance.md: sizing per 1,000 users)."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_shards" {
  description = "Node groups (masters). The streams' partitions spread over them by hash slot."
  type        = number
  default     = 3
}

variable "redis_replicas_per_shard" {
  description = "Replicas per shard; at least one for automatic failover."
  type        = number
  default     = 1
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily snapshots kept."
  type        = number
  default     = 7
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.31"
}

variable "node_instance_types" {
  description = "Instance types of the EKS managed node group."
  type        = list(string)
  default     = ["m7g.large"]
}

variable "node_count" {
  description = "Desired, minimum and maximum nodes of the node group."
  type        = object({ desired = number, min = number, max = number })
  default     = { desired = 3, min = 3, max = 10 }
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint publicly; empty keeps it private only."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Days the Redis and EKS logs are kept in CloudWatch."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
