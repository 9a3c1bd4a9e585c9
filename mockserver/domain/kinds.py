"""The building's record kinds and index names, in one place so the layout of its state can be read at a glance."""

from __future__ import annotations

__all__ = ["K"]


class K:
    """Record kinds and index names, in one place so the layout of the state can be read at a glance."""

    OWNER = "owner"  # key: user id
    OWNER_BY_LOGIN = "owner_login"  # key: login -> {id}
    OWNER_BY_UUID = "owner_uuid"  # key: uuid -> {id}
    STUDIO = "studio"  # key: studio id
    API_KEY = "api_key"  # key: the key -> {studio_id, scopes}
    TOKEN = "token"  # key: bearer token -> {api, user_id, session_id, pinned}
    SESSION = "session"  # key: session id -> {token}
    OAUTH_CODE = "oauth_code"  # key: code -> {user_id, redirect_uri, expires_at}
    INTERCOM = "intercom"  # key: intercom id
    INTERCOM_BY_UUID = "intercom_uuid"  # key: uuid -> {id}
    CODE = "code"  # key: code id
    CODE_BY_UUID = "code_uuid"  # key: uuid -> {id}
    CODE_BY_DIGITS = "code_digits"  # key: "<intercom>:<digits>" -> {id}; digits are unique per intercom
    KEYPAD = "keypad"  # key: "<intercom>:<digits>" -> what the device itself holds
    SYNC = "sync"  # key: sequence -> a change queued for an offline device
    DEVICE_LOG = "device_log"  # key: sequence -> one device event
    CUSTOMER = "customer"  # key: customer id
    MEDIUM_VALUE = "medium_value"  # key: "<studio>:<type>:<value>" -> {customer_id, medium_id}
    QR = "qr"  # key: QR content -> {customer_id, studio_id}
    META = "meta"  # key: name -> anything the building keeps about itself

    # indexes
    INTERCOMS_BY_OWNER = "intercoms_by_owner"
    CODES_BY_USER = "codes_by_user"
    CODES_BY_INTERCOM = "codes_by_intercom"
    CODES_BY_DEADLINE = "codes_by_deadline"
    SESSIONS_BY_USER = "sessions_by_user"
    SYNC_BY_INTERCOM = "sync_by_intercom"
    LOG_BY_INTERCOM = "log_by_intercom"
    KEYPAD_BY_INTERCOM = "keypad_by_intercom"
    UNLOCKED_DOORS = "unlocked_doors"  # intercoms whose door stands open, by when it relocks
    CUSTOMERS_BY_STUDIO = "customers_by_studio"
