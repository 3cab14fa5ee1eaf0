# Parley on AWS: an ElastiCache cluster (cluster mode, TLS, one ACL user per service), its subnets
# and security groups, and an EKS cluster for the services (deploy/kubernetes). A module: call it
# from a root module of your own (docs/kubernetes.md, "AWS with Terraform").
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6"
    }
  }
}
