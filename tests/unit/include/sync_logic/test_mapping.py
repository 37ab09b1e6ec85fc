"""The mapping file: the default loads as the contract describes it; bad files name the bad key."""

from __future__ import annotations

import copy
from pathlib import Path

import pydantic
import pytest
import yaml

from include.sync_logic.mapping import MappingError, load_mapping, parse_mapping
from include.sync_logic.sides import Side

HUBSPOT, SALESFORCE = Side.HUBSPOT, Side.SALESFORCE

DEFAULT = Path(__file__).resolve().parents[4] / "include" / "mappings" / "contacts.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def test_default_mapping_matches_the_contract():
    mapping = load_mapping(DEFAULT)
    pairs = [(f.salesforce, f.hubspot, f.direction) for f in mapping.fields]
    assert pairs == [
        ("Email", "email", "both"),
        ("FirstName", "firstname", "both"),
        ("LastName", "lastname", "both"),
        ("Phone", "phone", "both"),
        ("MobilePhone", "mobilephone", "both"),
        ("Title", "jobtitle", "both"),
        ("Account.Name", "company", "salesforce_to_hubspot"),
    ]
    assert mapping.field("email").transforms == ("strip", "lowercase")
    assert mapping.conflict_default == "latest"
    assert mapping.on_counterpart_deleted == "keep"
    assert mapping.propagate_deletes is False
    assert (mapping.link.salesforce, mapping.link.hubspot) == ("HubSpot_Contact_Id__c", "salesforce_contact_id")
    limits = {f.salesforce: f.max_length.get(SALESFORCE) for f in mapping.fields}
    assert limits == {
        "Email": 80,
        "FirstName": 40,
        "LastName": 80,
        "Phone": 40,
        "MobilePhone": 40,
        "Title": 128,
        "Account.Name": None,
    }
    assert mapping.field("lastname").default_if_blank == {SALESFORCE: "[not provided]"}


def test_select_lists_for_the_extracts():
    mapping = load_mapping(DEFAULT)
    assert mapping.salesforce_fields == [
        "Id",
        "Email",
        "FirstName",
        "LastName",
        "Phone",
        "MobilePhone",
        "Title",
        "Account.Name",
        "HubSpot_Contact_Id__c",
        "SystemModstamp",
        "LastModifiedDate",
        "IsDeleted",
    ]
    assert mapping.hubspot_properties == [
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "jobtitle",
        "company",
        "salesforce_contact_id",
        "lastmodifieddate",
        "hs_object_id",
    ]


def test_relationship_field_is_never_written_to_salesforce():
    company = load_mapping(DEFAULT).field("company")
    assert company.writes_to(HUBSPOT)
    assert not company.writes_to(SALESFORCE)


def test_config_is_frozen():
    mapping = load_mapping(DEFAULT)
    with pytest.raises(pydantic.ValidationError):
        mapping.on_counterpart_deleted = "delete"  # type: ignore[misc]


def _broken(raw: dict, edit) -> dict:
    doc = copy.deepcopy(raw)
    edit(doc)
    return doc


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["fields"][3].update(direction="sideways"),
            "fields[3].direction: must be one of both, salesforce_to_hubspot, hubspot_to_salesforce",
        ),
        (lambda d: d["fields"][0].update(colour="red"), "fields[0].colour: unknown key"),
        (lambda d: d["fields"][1].pop("hubspot"), "fields[1].hubspot: required"),
        (lambda d: d["fields"][2].update(name="email"), "fields[2].name: 'email' already used by fields[0]"),
        (lambda d: d["fields"][2].update(transforms=["strip", "shout"]), "fields[2].transforms[1]: must be one of"),
        (lambda d: d["fields"][0].update(conflict="newest"), "fields[0].conflict: must be one of latest"),
        (lambda d: d["fields"][0].update(max_length={"salesforce": 0}), "fields[0].max_length.salesforce:"),
        (lambda d: d["fields"][0].update(max_length={"oracle": 5}), "fields[0].max_length.oracle: unknown side"),
        (lambda d: d["fields"][6].update(direction="both"), "fields[6].direction: Account.Name is a relationship"),
        (lambda d: d["fields"][6].update(transforms=["truncate"]), "fields[6].transforms: truncate needs"),
        (
            lambda d: d["fields"][3].update(transforms=["phone_e164", "truncate"]),
            "fields[3].transforms: a phone number is never truncated",
        ),
        (lambda d: d["fields"][2].update(required=["oracle"]), "fields[2].required[0]: must be one of"),
        (
            lambda d: d["fields"][2].update(default_if_blank={"salesforce": "x" * 81}),
            "fields[2].default_if_blank.salesforce: longer than max_length (80)",
        ),
        (lambda d: d["fields"][1].update(name="deleted"), "fields[1].name: 'deleted' is reserved"),
        (lambda d: d["fields"][1].update(hubspot="salesforce_contact_id"), "fields[1]: maps a link field"),
        (lambda d: d.update(match_on="fax"), "match_on: 'fax' is not the name of a field"),
        (lambda d: d.update(conflict_default="coin_toss"), "conflict_default: must be one of"),
        (lambda d: d.update(propagate_deletes="yes"), "propagate_deletes: must be true or false"),
        (lambda d: d.update(on_counterpart_deleted="purge"), "on_counterpart_deleted: must be one of keep, recreate"),
        (
            lambda d: d.update(propagate_deletes=True, on_counterpart_deleted="recreate"),
            "propagate_deletes: true contradicts on_counterpart_deleted: recreate",
        ),
        (lambda d: d.update(fields=[]), "fields: must be a non-empty list"),
        (lambda d: d["phone"].update(default_country_code="UK"), "phone.default_country_code:"),
        (lambda d: d["link"].update(salesforce=""), "link.salesforce: must be a non-empty string"),
        (lambda d: d.update(version=2), "version: must be 1"),
    ],
)
def test_bad_mapping_names_the_key(raw, edit, message):
    with pytest.raises(MappingError) as err:
        parse_mapping(_broken(raw, edit))
    assert str(err.value).startswith(message)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [\n")
    with pytest.raises(MappingError, match="not valid YAML"):
        load_mapping(bad)
    with pytest.raises(MappingError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")


def test_field_rules_and_phone_settings_load(raw):
    doc = _broken(raw, lambda d: d["fields"][1].update(conflict="prefer_hubspot_unless_blank"))
    doc["phone"] = {"default_country_code": "+44", "national_number_length": 10, "trunk_prefix": "0"}
    del doc["on_counterpart_deleted"]
    doc["propagate_deletes"] = True  # deprecated alias of on_counterpart_deleted: delete
    mapping = parse_mapping(doc)
    assert mapping.conflict_rule(mapping.field("firstname")) == "prefer_hubspot_unless_blank"
    assert mapping.conflict_rule(mapping.field("email")) == "latest"
    assert (mapping.phone.default_country_code, mapping.phone.trunk_prefix) == ("44", "0")
    assert mapping.propagate_deletes is True


@pytest.mark.parametrize(
    ("given", "option"),
    [
        ({"on_counterpart_deleted": "recreate"}, "recreate"),
        ({"on_counterpart_deleted": "delete"}, "delete"),
        ({"propagate_deletes": False}, "keep"),
        ({"propagate_deletes": False, "on_counterpart_deleted": "recreate"}, "recreate"),
        ({"propagate_deletes": True, "on_counterpart_deleted": "delete"}, "delete"),
        ({}, "keep"),
    ],
)
def test_on_counterpart_deleted_and_its_deprecated_alias(raw, given, option):
    doc = _broken(raw, lambda d: d.pop("on_counterpart_deleted"))
    mapping = parse_mapping({**doc, **given})
    assert mapping.on_counterpart_deleted == option
    assert mapping.propagate_deletes is (option == "delete")
