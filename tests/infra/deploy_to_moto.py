#!/usr/bin/env python3
"""Deploy infra/network.yaml and infra/audit.yaml to a moto_server and check what it built.

usage: deploy_to_moto.py ENDPOINT INFRA_DIR      (boto3 from moto's own virtualenv)

moto's CloudFormation creates most resources of the templates. It does not apply an S3
bucket's NotificationConfiguration, versioning or bucket policy, a Lambda's Architectures, Logs
subscription filters or Glue resources from a template: those are checked in the templates themselves
(check_templates.py), not here.
"""
import json
import sys
import time

import boto3


def main():
    endpoint, infra = sys.argv[1], sys.argv[2]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    cfn, s3, ec2 = boto3.client("cloudformation", **kw), boto3.client("s3", **kw), boto3.client("ec2", **kw)
    lam, ssm, sqs, iam = boto3.client("lambda", **kw), boto3.client("ssm", **kw), boto3.client("sqs", **kw), boto3.client("iam", **kw)
    account = boto3.client("sts", **kw).get_caller_identity()["Account"]

    def deploy(name, path, params):
        cfn.create_stack(StackName=name, TemplateBody=open(path).read(), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        for _ in range(100):
            st = cfn.describe_stacks(StackName=name)["Stacks"][0]
            if not st["StackStatus"].endswith("IN_PROGRESS"):
                break
            time.sleep(0.2)
        assert st["StackStatus"] == "CREATE_COMPLETE", (name, st["StackStatus"], st.get("StackStatusReason"))
        return {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}

    logs_bucket = f"ssm-audit-session-logs-{account}"
    net = deploy("ssm-network", f"{infra}/network.yaml", {"SessionLogBucketName": logs_bucket, "S3PrefixListId": "pl-63a5400a"})
    endpoints = {e["ServiceName"].rsplit(".", 1)[1]: e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]}
    for svc in ["ssm", "ssmmessages", "ec2messages", "logs", "kms"]:
        assert endpoints[svc]["VpcEndpointType"] == "Interface" and endpoints[svc]["PrivateDnsEnabled"], svc
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    routes = [r for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net["VpcId"]]}])["RouteTables"] for r in t["Routes"]]
    assert not any(r.get("GatewayId", "").startswith("igw-") or r.get("NatGatewayId") for r in routes), routes
    print("network: endpoints ssm, ssmmessages, ec2messages, logs, kms (interface, private DNS) and s3 (gateway); no internet route")

    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="ingest-lambda/bootstrap.zip", Body=b"PK")
    out = deploy("ssm-audit", f"{infra}/audit.yaml", {
        "ArtifactBucket": "artifacts", "SubnetIds": net["SubnetIds"], "SecurityGroupId": net["InstanceSecurityGroupId"]})
    fn = lam.get_function(FunctionName=out["IngestFunction"])["Configuration"]
    assert fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap", fn
    assert fn["Environment"]["Variables"]["SSM_AUDIT_OUTPUT"] == f"s3://{out['RecordsBucket']}/audit", fn["Environment"]
    print(f"function {fn['FunctionName']}: {fn['Runtime']}, SSM_AUDIT_OUTPUT={fn['Environment']['Variables']['SSM_AUDIT_OUTPUT']}")
    for b in [out["SessionLogBucket"], out["TrailBucket"], out["RecordsBucket"]]:
        enc = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", (b, enc)
    print("buckets: session logs, trail, records encrypted with KMS")
    content = ssm.get_document(Name="SSM-SessionManagerRunShell")["Content"]
    doc = json.loads(content) if isinstance(content, str) else content
    assert doc["sessionType"] == "Standard_Stream" and doc["inputs"]["s3BucketName"] == logs_bucket, doc
    assert doc["inputs"]["cloudWatchStreamingEnabled"] in (True, "true") and doc["inputs"]["s3EncryptionEnabled"] in (True, "true"), doc
    print("session preferences: SSM-SessionManagerRunShell, Standard_Stream, S3 and CloudWatch logging")
    assert sqs.get_queue_url(QueueName=out["DeadLetterQueueUrl"].rsplit("/", 1)[1])["QueueUrl"]
    policies = {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert any("ConnectToOwnInstances" in p for p in policies), policies
    print("dead-letter queue and connect policies exist")
    print("deployed")


if __name__ == "__main__":
    main()
