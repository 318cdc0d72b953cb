"""What we know of RunComfy's Model API wire format, in one place.

Each fact carries its evidence as in ../shared/api/runcomfy-queue.md:
[DOC] documented, [CODE-RC] seen in RunComfy's own code, [INF] inferred, [GUESS] our choice.
A correction to the real service's behaviour should be a one-line change here; the client and
the simulator both read these names.
"""

from __future__ import annotations

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"  # [DOC]
# RUNCOMFY_API_TOKEN is ours; RUNCOMFY_TOKEN is the CLI's [CODE-RC]
TOKEN_ENV_VARS = ("RUNCOMFY_API_TOKEN", "RUNCOMFY_TOKEN")
BASE_URL_ENV_VAR = "RUNCOMFY_BASE_URL"

# Routes [DOC], catalog entry [CODE-RC]. model_id keeps its slashes verbatim.
SUBMIT_PATH = "/v1/models/{model_id}"  # POST, flat JSON body
MODEL_PATH = "/v1/models/{model_id}"  # GET, catalog entry with price fields
STATUS_PATH = "/v1/requests/{request_id}/status"  # GET
RESULT_PATH = "/v1/requests/{request_id}/result"  # GET
CANCEL_PATH = "/v1/requests/{request_id}/cancel"  # POST, no body, answers 202
INCLUDE_COST_PARAM = {"include_cost": "true"}  # [CODE-RC] adds numeric `cost` (USD) to /result

# Submit answer fields [DOC].
REQUEST_ID = "request_id"
STATUS_URL = "status_url"
RESULT_URL = "result_url"
CANCEL_URL = "cancel_url"

# Status words. /status: in_queue -> in_progress -> completed | cancelled [DOC];
# `failed` on /status is not documented but tolerated [INF].
IN_QUEUE = "in_queue"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
QUEUE_POSITION = "queue_position"  # only while in_queue [DOC]
LIVE_STATUSES = frozenset({IN_QUEUE, IN_PROGRESS})
# /status words after which /result tells success or failure.
STATUS_FINISHED = frozenset({COMPLETED, SUCCEEDED, FAILED, CANCELLED, "canceled", "error"})
# /result: `succeeded` [DOC] or `completed` [CODE-RC] both mean success.
RESULT_SUCCESS = frozenset({SUCCEEDED, COMPLETED})
RESULT_FAILURE = frozenset({FAILED, "error"})
RESULT_CANCELLED = frozenset({CANCELLED, "canceled"})

# Result body fields.
OUTPUT = "output"
OUTPUT_VIDEO = "video"  # [UNK] for this model: read `video`, else `videos[0]`, else any URL
OUTPUT_VIDEOS = "videos"
ERROR = "error"
COST = "cost"
CREATED_AT = "created_at"
FINISHED_AT = "finished_at"

# Cancel answer [DOC]: 202 with `outcome`.
OUTCOME = "outcome"
OUTCOME_CANCELLED = "cancelled"
OUTCOME_NOT_CANCELLABLE = "not_cancellable"

# Error bodies: `error_code` plus one of these message fields [DOC]/[CODE-RC].
ERROR_CODE = "error_code"
ERROR_MESSAGE_FIELDS = ("error_message", "message", "error", "detail")
ERROR_CODE_BAD_MODEL = 400001  # InvalidResourceIdentifier [DOC]
ERROR_CODE_NO_BALANCE = 400002  # InsufficientResources [DOC]
ERROR_CODE_ACCOUNT = 400004  # UserAccountError: missing/bad token [DOC]
ERROR_CODE_FORBIDDEN = 403001  # [DOC]
ERROR_CODE_NOT_FOUND = 404001  # [DOC]
ERROR_CODE_VALIDATION = 422001  # [GUESS] shape borrowed from the Serverless API

# Catalog price fields [CODE-RC].
PRICE_USD = "base_price_usd"
PRICE_UNIT = "price_unit"  # "second" or "output"
PRICE_NOTE = "pricing_note"

# Ours: the simulator's placeholder videos say so in their MP4 `comment` tag, so that a media
# check does not judge a 256 px preview against the resolution the request asked for.
PLACEHOLDER_COMMENT = "pipeline sim: placeholder video, not model output"

# Output videos of this model are 24 fps (121 frames ~ 5 s, 241 ~ 10 s) [INF from upstream docs].
OUTPUT_FPS = 24


def billed_seconds(frames: int, fps: int = OUTPUT_FPS) -> int:
    """Seconds a per-second price is charged for: the clip's nominal length (121 frames at 24
    fps is the "5 s" clip) [GUESS: RunComfy does not say; the model is sold as 5 s or 10 s]."""
    return round(frames / fps)

# --- Added for the client (pipeline.client); additive only. ---
# Request ids go into URL paths: RunComfy's own nodes accept [A-Za-z0-9_-]{1,128} [CODE-RC]; we
# also allow '.'. Ids are UUID4 in practice [CODE-3P].
REQUEST_ID_PATTERN = r"[A-Za-z0-9_.\-]{1,128}"
RETRY_AFTER_HEADER = "Retry-After"  # seconds or an HTTP date; not documented by RunComfy [UNK]
# A URL in `output` with one of these endings is preferred as "the video" when neither
# `output.video` nor `output.videos[0]` is there [GUESS].
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".m4v", ".mkv")
# Largest local image we inline as a data: URI. RunComfy's nodes keep a whole request under 64 MiB
# and PNGs under 6 MiB [CODE-RC]; base64 grows a file by 4/3 [GUESS: 48 MiB raw ~ 64 MiB encoded].
DATA_URI_MAX_BYTES = 48 * 1024 * 1024

# Error body field names [GUESS]: shape borrowed from the Serverless docs (see §1 of the notes).
ERROR_STATUS_CODE = "status_code"
ERROR_DETAIL = "detail"
ERROR_CODE_BAD_INPUT = 400000  # [GUESS] a refused input value (e.g. a data URI where URLs are due)
ERROR_CODE_RATE_LIMITED = 429001  # [GUESS] no code is documented for 429
ERROR_CODE_SERVER = 500001  # [DOC] for the Serverless API; [GUESS] for the Model API
RETRY_AFTER = "Retry-After"  # header on 429 (seconds) [GUESS]: not documented
MODEL_ID = "model_id"  # echoed in /result and the catalog entry [CODE-RC]
INPUT_SCHEMA = "input_schema"  # [GUESS] key of the input schema in the catalog entry

# --- Added for any model of the catalog (issue 13); additive only. ---
# The catalog listing [CODE-RC]: GET /v1/models?include_schema=true&limit=&offset= answers
# {"models": [entry, ...], "total": N}; the Dify plugin caps `limit` at 100 [CODE-3P].
MODELS_PATH = "/v1/models"
CATALOG_MODELS = "models"
CATALOG_TOTAL = "total"
CATALOG_LIMIT_MAX = 100
INCLUDE_SCHEMA_PARAM = "include_schema"
OUTPUT_SCHEMA = "output_schema"  # [GUESS] beside input_schema in a catalog entry
CATALOG_KIND = "kind"  # [INF] what a model makes ("video", "image"): the listing filters by it
# Media fields of catalog schemas are marked with `format` [CODE-RC]: one value or a list.
MEDIA_FORMATS = {"image_uri": "image", "image_uris": "image", "video_uri": "video",
                 "video_uris": "video", "audio_uri": "audio", "audio_uris": "audio"}
FLOAT_TYPE = "float"  # the catalog's nonstandard "type": "float" means a JSON number [CODE-RC]
# Output keys a result may carry [DOC]/[CODE-RC]; the model's output schema says which it uses.
OUTPUT_IMAGE = "image"
OUTPUT_IMAGES = "images"
VIDEO_OUTPUT_KEYS = (OUTPUT_VIDEO, OUTPUT_VIDEOS)
IMAGE_OUTPUT_KEYS = (OUTPUT_IMAGES, OUTPUT_IMAGE)
# Status words other clients tolerate [CODE-RC]: `canceled` (one l) and `error` for a failure.
CANCELED = "canceled"
ERROR_WORD = "error"

# --- Added for the wallet and transport (issue 20); additive only. ---
# One wallet funds every RunComfy product; it lives on the core API, not the Model API's host
# [CODE-RC: runcomfy-cli src/cmd/balance.rs, src/api.rs]: GET with the bearer token answers
# {"balance_usd": <number>, "currency": ...}.
DEFAULT_ACCOUNT_URL = "https://api.runcomfy.net"  # [CODE-RC]
ACCOUNT_URL_ENV_VAR = "RUNCOMFY_ACCOUNT_URL"  # ours: where the wallet is read (tests, a proxy)
BALANCE_PATH = "/prod/v2/balance"  # [CODE-RC]
BALANCE_USD = "balance_usd"  # [CODE-RC]
BALANCE_CURRENCY = "currency"  # [CODE-RC]
# Insufficient balance on a submit: error_code 400002 [DOC] (ERROR_CODE_NO_BALANCE above); the
# partner nodes read HTTP 402 as the same [CODE-RC]. The simulator answers with the HTTP status
# the code's first digits name (400) [INF: as 400001, 403001, 404001 do].
NO_BALANCE_STATUS = 400
# /status words RunComfy's partner nodes count as still running besides the documented two
# [CODE-RC: runcomfy/execution.py]; any other unknown word is polled on too [CODE-RC: the MCP
# client loops on any word it does not know].
PENDING = "pending"
WAITING = "waiting"
STARTING = "starting"
PROCESSING = "processing"
MORE_LIVE_STATUSES = frozenset({PENDING, WAITING, STARTING, PROCESSING})
ALL_LIVE_STATUSES = LIVE_STATUSES | MORE_LIVE_STATUSES
# Downloads: RunComfy's CLI gives its download client no overall deadline, 10 s to connect and
# a 120 s read-inactivity timeout [CODE-RC: src/download.rs, src/api.rs].
DOWNLOAD_CONNECT_TIMEOUT = 10.0
DOWNLOAD_READ_TIMEOUT = 120.0  # seconds without a byte before a download attempt is given up
