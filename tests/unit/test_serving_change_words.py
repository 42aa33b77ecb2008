"""What serving another version loses, in one set of words (words/serving_change.class_change): `leafdoc models
promote` and the desktop app's "Serve this version?" say it alike, and the promotion rule names the classes so too."""

from __future__ import annotations

from leafdoc.words.serving_change import class_change, some_named


def test_the_classes_a_version_does_not_know_are_named_three_and_counted_beyond():
    old = ["a", "b", "c", "d", "e", "f"]
    assert some_named(old) == "a, b, c and 3 more"
    assert some_named(old[:2]) == "a and b"
    [lost] = class_change(old, ["a", "x"], 2, name=str.upper)
    assert lost == (
        "It knows 2 classes where version 2 knew 6: photos of the 5 it does not know (B, C, D and 2 more) are "
        "answered as one of its own or refused."
    )


def test_a_version_sharing_no_class_is_said_not_to_compare_and_the_same_classes_lose_nothing():
    shared_none, lost = class_change(["a", "b"], ["x"], 3)
    assert "shares no class with version 3" in shared_none and "do not compare the two models" in shared_none
    assert "(a and b)" in lost
    assert class_change(["a", "b"], ["b", "a", "c"], 3) == []
    assert class_change(["a"], [], 3) == []  # nothing known of the new one's classes: nothing said


def test_one_photo_is_one_photo():
    """The docs review of session 74: `models add` printed "On 1 photos of its test split ... 1 photos are too few"."""
    from leafdoc.words.serving_change import compared_on_test

    assert compared_on_test(1, "accuracy", 1.0, 0.0, 3) == (
        "On 1 photo of its test split: accuracy 100.0%, against 0.0% for version 3; 1 photo is too few to tell two "
        "models apart."
    )
    assert compared_on_test(1200, "accuracy", 0.99, 0.97, 3) == (
        "On 1,200 photos of its test split: accuracy 99.0%, against 97.0% for version 3."
    )
