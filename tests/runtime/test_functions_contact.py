"""Phone numbers (E.164) and email addresses."""

from __future__ import annotations

import pytest

from runtime.functions import ConversionError, collect_reports, email, is_email, phone


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("07911 123456", "GB", "+447911123456"),  # UK mobile
        ("07911-123-456", "GB", "+447911123456"),
        ("020 7946 0958", "GB", "+442079460958"),  # London landline
        ("(020) 7946 0958", "GB", "+442079460958"),
        ("+44 (0)20 7946 0958", "GB", "+442079460958"),
        ("0044 20 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),  # an explicit country code wins
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1-415-555-2671", "US", "+14155552671"),
        ("+1 202 555 0143", "GB", "+12025550143"),
        ("202-555-0143", "us", "+12025550143"),  # region is case-insensitive
        (" 07911123456 ", "GB", "+447911123456"),
        (7911123456, "GB", "+447911123456"),  # spreadsheet exports drop the leading 0
    ],
)
def test_phone_e164(raw, region, expected):
    assert phone(raw, region) == expected


def test_phone_default_region_is_gb():
    assert phone("07911 123456") == "+447911123456"


@pytest.mark.parametrize(
    "raw, region",
    [
        ("12345", "GB"),  # too short
        ("07911 1234567890", "GB"),  # too long
        ("hello", "GB"),
        ("", "GB"),
        ("020 7946 0958", None),  # no country to read it in
        ("020 7946 0958", "XX"),
        ("020 7946 0958", "GBR"),
        ("(415) 555-267", "US"),
        ("+1 011 555 2671", "GB"),  # not a real US range
    ],
)
def test_invalid_phones_raise(raw, region):
    with pytest.raises(ConversionError) as info:
        phone(raw, region)
    assert info.value.function == "phone"
    if raw:
        assert raw not in str(info.value)


def test_phone_rejects_non_text():
    with pytest.raises(ConversionError):
        phone(7.9e9)
    with pytest.raises(ConversionError):
        phone(True)


def test_phone_reports_a_dropped_extension():
    with collect_reports() as reps:
        assert phone("020 7946 0958 ext. 123", "GB") == "+442079460958"
        assert phone("(415) 555-2671 x42", "US") == "+14155552671"
        assert phone("020 7946 0958", "GB") == "+442079460958"
    assert [r.kind for r in reps] == ["phone_extension_dropped"] * 2
    assert "123" not in reps[0].detail


@pytest.mark.parametrize(
    "raw, expected",
    [
        (" John.Smith@Example.COM ", "john.smith@example.com"),
        ("user+tag@sub.example.co.uk", "user+tag@sub.example.co.uk"),
        ("o'brien@clinic.ie", "o'brien@clinic.ie"),
        ("a_b-c@x-y.org", "a_b-c@x-y.org"),
        ("x@xn--bcher-kva.com", "x@xn--bcher-kva.com"),
    ],
)
def test_email_normalises(raw, expected):
    assert email(raw) == expected
    assert is_email(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "", "   ", "plainaddress", "a@b", "a@b.c1", "@example.com", "john@", "john@@example.com",
        "john..smith@example.com", ".john@example.com", "john.@example.com",
        "john smith@example.com", "John Smith <john@example.com>", "john@-example.com",
        "john@example-.com", "john@example..com", "josé@example.com", "john@exam_ple.com",
        "mailto:john@example.com", "a" * 65 + "@example.com", "a@" + "b" * 250 + ".com",
        "john@example.com.",
    ],
)
def test_invalid_emails(raw):
    assert not is_email(raw)
    with pytest.raises(ConversionError) as info:
        email(raw)
    assert info.value.function == "email"
    if raw.strip():
        assert raw not in str(info.value)


def test_is_email_on_non_text():
    assert is_email(None) is False
    assert is_email(42) is False
    with pytest.raises(ConversionError):
        email(42)
