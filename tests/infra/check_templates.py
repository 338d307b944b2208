#!/usr/bin/env python3
"""Check that infra/*.yaml hold every resource the audited estate and the pipeline need.

usage: check_templates.py INFRA_DIR      (exit 1 with the list of what is missing)
"""
import sys

import yaml


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


def load(path):
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)["Resources"]


def of_type(res, t):
    return {k: v for k, v in res.items() if v["Type"] == t}


def plain(x):
    """A string property, or the template of a !Sub."""
    return x.get("Sub", "") if isinstance(x, dict) else str(x)


def text(x):
    return yaml.safe_dump(x, default_flow_style=True, width=10_000)


def main():
    infra = sys.argv[1]
    net = load(f"{infra}/network.yaml")
    audit = load(f"{infra}/audit.yaml")
    problems = []

    def need(ok, what):
        print(("ok      " if ok else "MISSING ") + what)
        if not ok:
            problems.append(what)

    # Network.
    need(len(of_type(net, "AWS::EC2::VPC")) == 1, "a VPC")
    subnets = of_type(net, "AWS::EC2::Subnet")
    azs = {text(s["Properties"]["AvailabilityZone"]) for s in subnets.values()}
    need(len(subnets) >= 2 and len(azs) >= 2, "private subnets in two AZs")
    need(all(s["Properties"].get("MapPublicIpOnLaunch") is False for s in subnets.values()), "no public IPs on launch")
    need(not of_type(net, "AWS::EC2::InternetGateway") and not of_type(net, "AWS::EC2::NatGateway")
         and not of_type(net, "AWS::EC2::Route"), "no internet gateway, NAT or internet route")
    eps = of_type(net, "AWS::EC2::VPCEndpoint")
    for svc in ["ssm", "ssmmessages", "ec2messages", "logs", "kms"]:
        found = [e for e in eps.values() if plain(e["Properties"]["ServiceName"]).endswith("." + svc)
                 and e["Properties"].get("VpcEndpointType") == "Interface" and e["Properties"].get("PrivateDnsEnabled") is True]
        need(bool(found), f"interface endpoint {svc} with private DNS")
    s3gw = [e for e in eps.values() if e["Properties"].get("VpcEndpointType") == "Gateway" and ".s3" in text(e["Properties"]["ServiceName"])]
    need(bool(s3gw) and "-session-logs-" in text(s3gw[0]["Properties"].get("PolicyDocument")), "S3 gateway endpoint with a bucket policy")
    gw_policy = text(s3gw[0]["Properties"].get("PolicyDocument")) if s3gw else ""
    need(all(f"-{b}-" in gw_policy for b in ["session-logs", "trail", "records"]) and "s3:GetObject" in gw_policy,
         "S3 gateway endpoint admitting the function to its three buckets when it runs in the VPC")
    storage = audit.get("IndexStorageSecurityGroup", {}).get("Properties", {})
    nfs_in = [r for r in storage.get("SecurityGroupIngress", [])
              if r.get("FromPort") == 2049 and "FunctionSecurityGroup" in text(r.get("SourceSecurityGroupId"))]
    need(bool(nfs_in) and all("IndexStorageSecurityGroup" in text(audit[m]["Properties"]["SecurityGroups"]) for m in ["IndexMountTargetA", "IndexMountTargetB"]),
         "index mount targets in a security group admitting NFS from the function's only")
    sgs = of_type(net, "AWS::EC2::SecurityGroup")
    need(any(r.get("FromPort") == 443 and "VpcCidr" in text(r.get("CidrIp")) for g in sgs.values()
             for r in g["Properties"].get("SecurityGroupIngress", [])), "endpoint security group admitting HTTPS from the VPC only")

    # Logging and evidence.
    buckets = of_type(audit, "AWS::S3::Bucket")
    logs = buckets.get("SessionLogBucket", {}).get("Properties", {})
    need(logs.get("VersioningConfiguration", {}).get("Status") == "Enabled", "session-log bucket versioned")
    need("aws:kms" in text(logs.get("BucketEncryption")), "session-log bucket SSE-KMS")
    pab = logs.get("PublicAccessBlockConfiguration", {})
    need(all(pab.get(k) is True for k in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"]), "Block Public Access")
    need("ObjectLockEnabled" in text(logs.get("ObjectLockConfiguration")), "Object Lock option")
    need("LifecycleConfiguration" in logs, "lifecycle rules")
    policies = text(of_type(audit, "AWS::S3::BucketPolicy"))
    need("aws:SecureTransport" in policies and "s3:DeleteObjectVersion" in policies, "TLS-only and deny-delete bucket policies")
    trails = of_type(audit, "AWS::CloudTrail::Trail")
    need(any(t["Properties"].get("EnableLogFileValidation") is True and t["Properties"].get("IsLogging") is True for t in trails.values()),
         "CloudTrail with log file validation")
    docs = of_type(audit, "AWS::SSM::Document")
    doc = next(iter(docs.values()), {}).get("Properties", {})
    content = doc.get("Content", {})
    inputs = content.get("inputs", {})
    need(doc.get("Name") == "SSM-SessionManagerRunShell" and content.get("sessionType") == "Standard_Stream",
         "SSM-SessionManagerRunShell (Standard_Stream)")
    need(inputs.get("s3EncryptionEnabled") is True and "s3BucketName" in inputs, "session logs to S3, encryption required")
    need(inputs.get("cloudWatchStreamingEnabled") is True and "cloudWatchLogGroupName" in inputs, "CloudWatch logging with streaming")
    need("kmsKeyId" in inputs and "idleSessionTimeout" in inputs, "KMS key for session data and idle timeout")
    role = text(audit.get("InstanceRole", {}))
    need("AmazonSSMManagedInstanceCore" in role and "s3:PutObject" in role and "kms:GenerateDataKey" in role, "instance role")
    need(bool(of_type(audit, "AWS::IAM::InstanceProfile")), "instance profile")

    # Who may connect.
    managed = text(of_type(audit, "AWS::IAM::ManagedPolicy"))
    need("ssm:resourceTag/Owner" in managed and "${aws:username}" in managed, "StartSession scoped by tag to the user")
    need("aws:PrincipalTag/Team" in managed, "StartSession scoped by team tag")
    need("aws:MultiFactorAuthPresent" in managed, "MFA required")
    need("session/${!aws:username}-*" in managed and "ssm:TerminateSession" in managed, "own sessions only")
    need("ssm:resourceTag/aws:ssmmessages:session-id" in managed and "${aws:userid}" in managed
         and "aws:PrincipalTag/Owner" in managed, "own instances and own sessions for federated callers")
    for name, pol in of_type(audit, "AWS::IAM::ManagedPolicy").items():
        stmts = pol["Properties"]["PolicyDocument"]["Statement"]
        kms = [st for st in stmts if st["Effect"] == "Allow" and "kms:GenerateDataKey" in text(st["Action"])
               and "SessionKey" in text(st["Resource"])]
        need(bool(kms), f"{name} grants kms:GenerateDataKey on the session key")
    lifecycle = [st for p in of_type(audit, "AWS::S3::BucketPolicy").values() for st in p["Properties"]["PolicyDocument"]["Statement"]
                 if st["Effect"] == "Deny" and "s3:PutLifecycleConfiguration" in text(st["Action"])]
    need(bool(lifecycle) and all("aws:CalledViaFirst" in text(st.get("Condition")) for st in lifecycle),
         "lifecycle denies that let the stack's own updates through")

    # The pipeline.
    fn = audit.get("IngestFunction", {}).get("Properties", {})
    need(fn.get("Runtime") == "provided.al2023" and "Architecture" in text(fn.get("Architectures")), "ingest-lambda on provided.al2023, architecture a parameter")
    notified = [k for k, b in buckets.items() if "LambdaConfigurations" in text(b["Properties"].get("NotificationConfiguration"))]
    need({"SessionLogBucket", "TrailBucket"} <= set(notified), "S3 notifications on session logs and CloudTrail")
    need(bool(of_type(audit, "AWS::Logs::SubscriptionFilter")), "CloudWatch Logs subscription filter")
    need(bool(of_type(audit, "AWS::SQS::Queue")) and "OnFailure" in text(of_type(audit, "AWS::Lambda::EventInvokeConfig")), "on-failure DLQ")
    alarms = text(of_type(audit, "AWS::CloudWatch::Alarm"))
    need("Errors" in alarms and "ApproximateNumberOfMessagesVisible" in alarms, "alarms on errors and DLQ depth")
    need(bool(of_type(audit, "AWS::EFS::FileSystem")) and "ReservedConcurrentExecutions" in fn, "EFS index option with reserved concurrency")
    table = text(of_type(audit, "AWS::Glue::Table"))
    need("projection.dt.type" in table and "PartitionKeys: [{Name: dt" in table, "Glue table partitioned by dt with projection")
    if problems:
        sys.exit(f"{len(problems)} missing: {problems}")
    print("all present")


if __name__ == "__main__":
    main()
