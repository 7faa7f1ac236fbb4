"""Cheap language detection and its flags."""

from __future__ import annotations

import pytest

from sidecar.scorers.base import Scores
from sidecar.scorers.heuristics.language import LanguageScorer, detect_language
from sidecar.trace import Trace


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("What is the capital of France?", "en"),
        ("How do I reset the password for this account?", "en"),
        ("Wie kann ich mein Passwort zurücksetzen?", "de"),
        ("Warum ist der Himmel blau und nicht grün?", "de"),
        ("Comment réinitialiser le mot de passe de mon compte ?", "fr"),
        ("Quelle est la capitale de la France ?", "fr"),
        ("¿Cómo puedo restablecer la contraseña de mi cuenta?", "es"),
        ("¿Cuál es la capital de Francia?", "es"),
        ("Qual è la capitale della Francia e perché?", "it"),
        ("Como posso redefinir a senha da minha conta? Não consigo.", "pt"),
        ("Hoe kan ik het wachtwoord van mijn account wijzigen?", "nl"),
        ("Как сбросить пароль?", "ru"),
        ("如何重置我的密码？", "zh"),
        ("パスワードをリセットするにはどうすればいいですか？", "ja"),
        ("東京は日本の首都です。", "ja"),
        ("비밀번호를 재설정하려면 어떻게 해야 하나요?", "ko"),
        ("كيف يمكنني إعادة تعيين كلمة المرور؟", "ar"),
        ("Πώς μπορώ να αλλάξω τον κωδικό μου;", "el"),
        ("पासवर्ड कैसे रीसेट करें?", "hi"),
    ],
)
def test_detects(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Kubernetes pod restart policy",  # no stop-words: unknown, not English
        "42",
        "la de",  # shared es/fr/pt... words: a tie
        "Привет hello world foo bar baz",  # mixed scripts, no majority of 60%
    ],
)
def test_unknown_when_not_confident(text: str) -> None:
    assert detect_language(text) is None


def _flags(query: str, answer: str) -> list[str]:
    out = Scores()
    LanguageScorer().score(Trace(trace_id="t", query=query, answer=answer), out)
    return out.flags


def test_same_language_no_flags() -> None:
    assert _flags("How do I reset my password?", "Open the Settings page and click Reset.") == []


def test_non_english_query() -> None:
    flags = _flags("Wie kann ich mein Passwort zurücksetzen?", "Öffnen Sie die Einstellungen.")
    assert flags == ["non_english"]


def test_mismatch() -> None:
    flags = _flags(
        "Wie kann ich mein Passwort zurücksetzen?",
        "Open the Settings page and click the Reset button to do this.",
    )
    assert flags == ["non_english", "language_mismatch"]
    assert _flags("如何重置我的密码？", "Open the Settings page and click Reset, that is all.") == [
        "non_english",
        "language_mismatch",
    ]


def test_unsure_answer_is_no_mismatch() -> None:
    assert _flags("What is the default port?", "8080.") == []
    assert _flags("What is the default port?", "") == []
