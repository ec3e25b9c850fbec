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


def test_a_diagnosis_explains_a_missing_element_but_not_a_typed_error() -> None:
    from services.scraper.classify import needs_diagnosis
    from services.scraper.diagnose import Diagnosis
    from services.scraper.kit import DownloadFailed

    terms = Diagnosis(C.ACTION_REQUIRED_ON_SITE, "terms to accept")
    assert classify(InterfaceChanged("no table"), terms).code is C.ACTION_REQUIRED_ON_SITE
    assert classify(PlaywrightTimeout("waiting for #invoices"), terms).code is C.ACTION_REQUIRED_ON_SITE
    assert classify(LoginFailed("bad"), terms).code is C.LOGIN_FAILED
    assert needs_diagnosis(InterfaceChanged()) and needs_diagnosis(PlaywrightTimeout("x"))
    assert needs_diagnosis(KeyError("bug"))
    assert not needs_diagnosis(DownloadFailed()) and not needs_diagnosis(RateLimited())
    assert not needs_diagnosis(PlaywrightError("net::ERR_CONNECTION_RESET"))
    assert not needs_diagnosis(TimeoutError())
