"""Forms sent as the HTML standard's "constructing the entry list" says a browser sends them (the
same rules checked against Chromium itself in tests/integration/test_scraper_forms_chromium.py)."""

from __future__ import annotations

from services.scraper.kit.forms import submission

URL = "http://portal.test/login"


def fields(html: str, submitter: str = "#go", fills: dict[str, str] | None = None) -> list[tuple[str, str]]:
    return submission(html, URL, submitter, fills or {}).fields


def form(inner: str) -> str:
    return f'<form id="f" method="post" action="/s">{inner}<button id="go">OK</button></form>'


def test_an_option_with_an_empty_value_sends_the_empty_value() -> None:
    # The placeholder of most selects: its value is "", never its label.
    html = form('<select name="site"><option value="">-- Choisissez --</option><option value="1">A</option></select>'
                '<select name="other"><option value>-- Aucun --</option></select>')
    assert fields(html) == [("site", ""), ("other", "")]


def test_an_option_without_value_sends_its_text_with_collapsed_whitespace() -> None:
    html = form('<select name="region"><option>  Ile  de\n  France </option></select>')
    assert fields(html) == [("region", "Ile de France")]


def test_a_single_select_sends_one_option_and_never_a_disabled_one() -> None:
    html = form('<select name="a"><option selected>x</option><option selected>y</option></select>'
                '<select name="b"><option disabled>-</option><option>first enabled</option></select>'
                '<select name="c"><option selected disabled>gone</option><option>z</option></select>'
                '<select name="d" multiple><option selected>m1</option><option>m2</option>'
                '<optgroup disabled><option selected>m3</option></optgroup><option selected>m4</option></select>')
    assert fields(html) == [("a", "y"), ("b", "first enabled"), ("d", "m1"), ("d", "m4")]


def test_a_checkbox_with_an_empty_value_sends_the_empty_value() -> None:
    html = form('<input type="checkbox" name="cb" value="" checked><input type="radio" name="r" checked>')
    assert fields(html) == [("cb", ""), ("r", "on")]


def test_one_radio_button_per_group_is_checked() -> None:
    html = form('<input type="radio" name="r" value="a" checked><input type="radio" name="r" value="b" checked>'
                '<input type="radio" name="other" value="c" checked>')
    assert fields(html) == [("r", "b"), ("other", "c")]


def test_controls_in_a_disabled_fieldset_are_not_sent() -> None:
    html = form('<fieldset disabled><legend><input name="in_legend" value="1"></legend>'
                '<input name="inside" value="2"></fieldset><input name="kept" value="3">')
    assert fields(html) == [("in_legend", "1"), ("kept", "3")]


def test_a_button_of_an_unknown_type_is_a_submit_button_not_a_field() -> None:
    html = form('<button type="primary" name="weird" value="w" id="weird">W</button>')
    assert fields(html) == []  # #go clicked: the other submit button is not sent
    assert fields(html, "#weird") == [("weird", "w")]


def test_an_image_button_without_a_name_sends_its_coordinates() -> None:
    html = '<form method="post" action="/s"><input name="a" value="1"><input type="image" id="img" src="ok.gif"></form>'
    assert fields(html, "#img") == [("a", "1"), ("x", "0"), ("y", "0")]


def test_a_file_input_without_a_file_sends_an_empty_name() -> None:
    html = form('<input type="file" name="attachment">')
    assert fields(html) == [("attachment", "")]


def test_enter_in_a_field_clicks_the_default_button() -> None:
    # Implicit submission: the form's first submit button is the submitter (ASP.NET forms need its name).
    html = ('<form method="post" action="/s"><input name="user" id="user">'
            '<input type="submit" name="ctl00$Login" value="Connexion" formaction="/login2">'
            '<input type="submit" name="cancel" value="Annuler"></form>')
    sent = submission(html, URL, "#user", {"#user": "pharma"})
    assert sent.fields == [("user", "pharma"), ("ctl00$Login", "Connexion")]
    assert sent.url == "http://portal.test/login2"


def test_controls_associated_by_the_form_attribute() -> None:
    # A button in a modal footer, a field laid out elsewhere: both belong to the form they name.
    html = ('<form id="login" method="post" action="/s"><input name="user" value="u">'
            '<input name="elsewhere" form="other" value="no"></form>'
            '<input name="password" form="login" id="pw"><button form="login" id="ext" name="go" value="1">OK</button>'
            '<form id="other"></form>')
    sent = submission(html, URL, "#ext", {"#pw": "secret"})
    assert sent.fields == [("user", "u"), ("password", "secret"), ("go", "1")]


def test_line_breaks_are_sent_as_crlf() -> None:
    html = form('<textarea name="note">a\nb\r\nc\rd</textarea>')
    assert fields(html) == [("note", "a\r\nb\r\nc\r\nd")]
