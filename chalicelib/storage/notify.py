"""SNS: the alert digest's messages go to the stage's alerts topic (email subscribers read them)."""
from __future__ import annotations

from chalicelib.storage import aws


def publish(topic_arn: str, subject: str, body: str) -> str:
    """Publish one message; returns its SNS message id."""
    return aws.client("sns").publish(TopicArn=topic_arn, Subject=subject, Message=body)["MessageId"]
