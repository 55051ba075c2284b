"""The emulator driven by boto3, an independent Cloud Control client."""

import json

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config


def client(url, region="us-east-1"):
    return boto3.client(
        "cloudcontrol",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="SECRET",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def wait(cc, token):
    waiter = cc.get_waiter("resource_request_success")
    waiter.wait(RequestToken=token, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return cc.get_resource_request_status(RequestToken=token)["ProgressEvent"]


def test_lifecycle_with_the_boto3_waiter(emulator_url):
    cc = client(emulator_url)
    created = cc.create_resource(
        TypeName="AWS::Logs::LogGroup",
        DesiredState=json.dumps({"LogGroupName": "from-boto3", "RetentionInDays": 7}),
    )["ProgressEvent"]
    assert created["OperationStatus"] == "IN_PROGRESS"
    done = wait(cc, created["RequestToken"])
    assert done["OperationStatus"] == "SUCCESS"
    assert done["Identifier"] == "from-boto3"
    # EventTime travels as epoch seconds; boto3 turns it into a datetime.
    assert done["EventTime"].year >= 2026

    got = cc.get_resource(TypeName="AWS::Logs::LogGroup", Identifier="from-boto3")
    assert json.loads(got["ResourceDescription"]["Properties"])["RetentionInDays"] == 7

    patched = cc.update_resource(
        TypeName="AWS::Logs::LogGroup",
        Identifier="from-boto3",
        PatchDocument=json.dumps([{"op": "replace", "path": "/RetentionInDays", "value": 30}]),
    )["ProgressEvent"]
    wait(cc, patched["RequestToken"])
    got = cc.get_resource(TypeName="AWS::Logs::LogGroup", Identifier="from-boto3")
    assert json.loads(got["ResourceDescription"]["Properties"])["RetentionInDays"] == 30

    deleted = cc.delete_resource(TypeName="AWS::Logs::LogGroup", Identifier="from-boto3")["ProgressEvent"]
    wait(cc, deleted["RequestToken"])
    with pytest.raises(cc.exceptions.ResourceNotFoundException):
        cc.get_resource(TypeName="AWS::Logs::LogGroup", Identifier="from-boto3")


def test_paginator_reads_every_page(emulator_url):
    cc = client(emulator_url)
    ids = []
    for page in cc.get_paginator("list_resources").paginate(TypeName="AWS::S3::Bucket"):
        ids.extend(d["Identifier"] for d in page["ResourceDescriptions"])
    assert len(ids) >= 3 and len(ids) == len(set(ids))


def test_waiter_fails_on_failed_request(emulator_url):
    cc = client(emulator_url)
    existing = cc.list_resources(TypeName="AWS::Logs::LogGroup")["ResourceDescriptions"][0]["Identifier"]
    ev = cc.create_resource(
        TypeName="AWS::Logs::LogGroup", DesiredState=json.dumps({"LogGroupName": existing})
    )["ProgressEvent"]
    with pytest.raises(botocore.exceptions.WaiterError):
        cc.get_waiter("resource_request_success").wait(
            RequestToken=ev["RequestToken"], WaiterConfig={"Delay": 1, "MaxAttempts": 10}
        )
    status = cc.get_resource_request_status(RequestToken=ev["RequestToken"])["ProgressEvent"]
    assert status["ErrorCode"] == "AlreadyExists"


def test_modeled_errors_reach_boto3(emulator_url):
    cc = client(emulator_url)
    with pytest.raises(cc.exceptions.TypeNotFoundException):
        cc.list_resources(TypeName="AWS::Nope::Thing")
    with pytest.raises(cc.exceptions.InvalidRequestException) as e:
        cc.list_resources(TypeName="AWS::EKS::Nodegroup")
    assert "required key [ClusterName] not found" in str(e.value)
    with pytest.raises(cc.exceptions.RequestTokenNotFoundException):
        cc.get_resource_request_status(RequestToken="nope")
