from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout

from services.scraper.classify import classify
from services.scraper.kit import InterfaceChanged, LoginFailed, RateLimited
from shared.errors import CollectionErrorCode as C


def test_typed_errors_keep_their_code() -> None:
    assert classify(LoginFailed("bad")).code is C.LOGIN_FAILED
    outcome = classify(RateLimited("429", retry_after_s=120))
    assert (outcome.code, outcome.retry_after_s) == (C.RATE_LIMITED, 120)
    assert classify(InterfaceChanged()).code is C.INTERFACE_CHANGED


def test_a_missing_element_means_the_interface_changed() -> None:
    assert classify(PlaywrightTimeout("Timeout 15000ms exceeded waiting for #login")).code is C.INTERFACE_CHANGED


def test_network_errors_mean_the_supplier_is_unavailable() -> None:
    exc = PlaywrightError("page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:1/")
    assert classify(exc).code is C.SUPPLIER_UNAVAILABLE
    assert classify(TimeoutError()).code is C.SUPPLIER_UNAVAILABLE


def test_anything_else_is_our_bug() -> None:
    outcome = classify(KeyError("x"))
    assert outcome.code is C.INTERNAL_ERROR
    assert "KeyError" in outcome.detail
