"""The AWS adapter (EC2, Service Quotas) over boto3; see ``providers.aws.adapter.AWSProvider``."""
