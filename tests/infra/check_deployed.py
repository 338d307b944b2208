#!/usr/bin/env python3
"""Check what scripts/deploy built on a moto_server: both stacks, and the resources in them.

usage: check_deployed.py ENDPOINT PREFIX      (boto3 from moto's own virtualenv)

moto's CloudFormation creates most resources of the templates. It does not apply an S3
bucket's NotificationConfiguration, versioning or bucket policy, a Lambda's Architectures, Logs
subscription filters, Glue resources or an EFS access point's attributes from a template: those
are checked in the templates themselves (check_templates.py, cfn-lint, checkov), not here.
"""
import json
import sys

import boto3


def main():
    endpoint, prefix = sys.argv[1], sys.argv[2]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    cfn, s3, ec2 = boto3.client("cloudformation", **kw), boto3.client("s3", **kw), boto3.client("ec2", **kw)
    lam, ssm, sqs, iam = boto3.client("lambda", **kw), boto3.client("ssm", **kw), boto3.client("sqs", **kw), boto3.client("iam", **kw)
    account = boto3.client("sts", **kw).get_caller_identity()["Account"]

    def stack(name):
        st = cfn.describe_stacks(StackName=name)["Stacks"][0]
        print(f"stack {name}: {st['StackStatus']}")
        assert st["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), (name, st["StackStatus"])
        return {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}, {p["ParameterKey"]: p["ParameterValue"] for p in st.get("Parameters", [])}

    net, _ = stack(f"{prefix}-network")
    out, params = stack(prefix)
    # The audit stack was given the network's outputs.
    # (moto keeps a list parameter as Python's text of the list)
    subnets = params["SubnetIds"].strip("[]").replace("'", "").replace(" ", "")
    assert subnets == net["SubnetIds"] and params["SecurityGroupId"] == net["InstanceSecurityGroupId"], (params, net)
    print("audit stack wired to the network's subnets and security group")
    endpoints = {e["ServiceName"].rsplit(".", 1)[1]: e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["VpcId"] == net["VpcId"]}
    for svc in ["ssm", "ssmmessages", "ec2messages", "logs", "kms"]:
        assert endpoints[svc]["VpcEndpointType"] == "Interface" and endpoints[svc]["PrivateDnsEnabled"], svc
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    routes = [r for t in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net["VpcId"]]}])["RouteTables"] for r in t["Routes"]]
    assert not any(r.get("GatewayId", "").startswith("igw-") or r.get("NatGatewayId") for r in routes), routes
    print("network: endpoints ssm, ssmmessages, ec2messages, logs, kms (interface, private DNS) and s3 (gateway); no internet route")

    fn = lam.get_function(FunctionName=out["IngestFunction"])["Configuration"]
    assert fn["Runtime"] == "provided.al2023" and fn["Handler"] == "bootstrap", fn
    assert fn["Environment"]["Variables"]["SSM_AUDIT_OUTPUT"] == f"s3://{out['RecordsBucket']}/audit", fn["Environment"]
    key = params["ArtifactKey"]
    assert key.startswith(f"ingest-lambda/{params['Architecture']}/") and s3.head_object(Bucket=params["ArtifactBucket"], Key=key), key
    print(f"function {fn['FunctionName']}: {fn['Runtime']}, code s3://{params['ArtifactBucket']}/{key}")
    for b in [out["SessionLogBucket"], out["TrailBucket"], out["RecordsBucket"]]:
        enc = s3.get_bucket_encryption(Bucket=b)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert enc["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", (b, enc)
    assert out["SessionLogBucket"] == f"{prefix}-session-logs-{account}" == net["SessionLogBucketName"], (out, net)
    print("buckets: session logs, trail, records encrypted with KMS")
    content = ssm.get_document(Name="SSM-SessionManagerRunShell")["Content"]
    doc = json.loads(content) if isinstance(content, str) else content
    assert doc["sessionType"] == "Standard_Stream" and doc["inputs"]["s3BucketName"] == out["SessionLogBucket"], doc
    assert doc["inputs"]["kmsKeyId"], doc
    print("session preferences: SSM-SessionManagerRunShell, Standard_Stream, S3 and CloudWatch logging, KMS")
    assert sqs.get_queue_url(QueueName=out["DeadLetterQueueUrl"].rsplit("/", 1)[1])["QueueUrl"]

    # Every policy that lets a person start a session lets them encrypt with the session key.
    key_arn = out["SessionKeyArn"]
    connect = [out[k] for k in ["ConnectToOwnInstancesPolicy", "ConnectFederatedToOwnInstancesPolicy",
                                "ConnectToTeamInstancesPolicy", "GrantPortForwardingPolicy"]]
    for arn in connect:
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        policy = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        policy = json.loads(policy) if isinstance(policy, str) else policy
        grants = [s for s in policy["Statement"] if s["Effect"] == "Allow"
                  and "kms:GenerateDataKey" in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
                  and key_arn in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
        assert grants, (arn, policy)
        starts = [s for s in policy["Statement"] if s["Effect"] == "Allow" and "ssm:StartSession" in json.dumps(s["Action"])]
        assert starts, (arn, "grants no StartSession")
        print(f"{arn.rsplit('/', 1)[1]}: ssm:StartSession, kms:GenerateDataKey on the session key")
    if "SampleInstanceId" in out:
        inst = ec2.describe_instances(InstanceIds=[out["SampleInstanceId"]])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
        assert tags.get("Owner") == params["SampleInstanceOwner"], tags
        print(f"sample instance {inst['InstanceId']} tagged Owner={tags['Owner']}")
    print("deployed")


if __name__ == "__main__":
    main()
