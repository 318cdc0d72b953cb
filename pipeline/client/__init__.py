"""Async client of RunComfy's Model API queue (submit, status, result, cancel, catalog, download).

    from pipeline.client import RunComfyClient
    async with RunComfyClient.from_env() as client:
        sub = await client.submit("bytedance/dreamina-3-0/image-to-video", body, base_dir=folder)
        info = await client.status(sub.request_id)

Errors are the ClientError branch of pipeline.errors. A failed submit raises SubmitError whose
`kind` is NOT_ACCEPTED or OUTCOME_UNKNOWN (table: `SUBMIT_TABLE`, `submit_table_markdown()`).
"""

from ._core import RunComfyClient
from ._env import MISSING_TOKEN_MESSAGE, env_account_url, env_base_url
from ._inline import inline_local_images, sniff, to_data_uri
from ._parse import (
                     find_video_url,
                     finished_result,
                     known_live,
                     parse_balance,
                     parse_cancel,
                     parse_error_body,
                     parse_model_entry,
                     parse_model_list,
                     parse_result,
                     parse_status,
                     parse_submit,
                     pick_outputs,
                     walk_urls,
)
from ._retry import RetryPolicy, retry_after_seconds
from ._submit import SUBMIT_TABLE, classify_exception, classify_status
from ._submit import table_markdown as submit_table_markdown
from ._types import (
                     NOT_ACCEPTED,
                     OUTCOME_UNKNOWN,
                     CancelInfo,
                     DownloadInfo,
                     ModelEntry,
                     ResultInfo,
                     StatusInfo,
                     Submission,
)

__all__ = [
    "MISSING_TOKEN_MESSAGE", "NOT_ACCEPTED", "OUTCOME_UNKNOWN", "SUBMIT_TABLE", "CancelInfo",
    "DownloadInfo", "ModelEntry", "ResultInfo", "RetryPolicy", "RunComfyClient", "StatusInfo",
    "Submission", "classify_exception", "classify_status", "env_account_url", "env_base_url",
    "find_video_url", "finished_result", "known_live", "parse_balance",
    "inline_local_images", "parse_cancel", "parse_error_body", "parse_model_entry",
    "parse_model_list", "parse_result", "parse_status", "parse_submit", "pick_outputs",
    "retry_after_seconds", "sniff", "submit_table_markdown", "to_data_uri", "walk_urls",
]
