"""The voice line (spec/voice-line.md): check a call by phone on the official number.

:mod:`callproof.voice.machine` is the check itself, independent of any telephony product;
:mod:`callproof.voice.prompts` turns its sentences into audio; the adapters connect it to a
platform: TwiML webhooks (``verifier_app/voice.py``) and SIP (:mod:`callproof.voice.sip`).
"""
