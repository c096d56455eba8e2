"""Export files go to S3 through a spooled file: one PutObject when small, multipart above 8 MB."""
from chalicelib import settings
from chalicelib.storage import aws as clients
from chalicelib.storage import exports
from chalicelib.storage.metering import metered

MB = 2**20


def test_a_file_above_8_mb_is_uploaded_in_parts(aws):
    def write(out):
        for _ in range(9):
            out.write(b"x" * MB)

    with metered() as calls:
        size = exports.upload("payroll/big.csv", write, "text/csv")

    assert size == 9 * MB
    assert calls["s3.CreateMultipartUpload"] == 1 and calls["s3.UploadPart"] == 2
    assert calls["s3.CompleteMultipartUpload"] == 1 and "s3.PutObject" not in calls
    head = clients.client("s3").head_object(Bucket=settings.data_bucket(), Key="payroll/big.csv")
    assert head["ContentLength"] == 9 * MB and head["ContentType"] == "text/csv"
    assert exports.exists("payroll/big.csv") and not exports.exists("payroll/none.csv")


def test_a_small_text_file_is_one_put_in_utf8(aws):
    with metered() as calls:
        exports.upload("x/small.csv", exports.as_text(lambda out: out.write("Zoë;€\r\n")), "text/csv")
    assert dict(calls) == {"s3.PutObject": 1}
    body = clients.client("s3").get_object(Bucket=settings.data_bucket(), Key="x/small.csv")["Body"].read()
    assert body == "Zoë;€\r\n".encode()
