"""The warnings a training run gives a small lab (lifecycle/caveats.py): too few photos a class, with the accuracy the
learning curve suggests at that count, and a model no better than chance on its test split."""

from __future__ import annotations

import pytest

from leafdoc.lifecycle import caveats


def test_the_curve_gives_back_its_measured_points():
    """The fit the warning quotes agrees with the learning curve it came from (docs/results.md: 90.2% at 26 photos a
    class, 94.4% at 106) within a point, and keeps climbing with more photos."""
    assert caveats.curve_accuracy(26) == pytest.approx(0.902, abs=0.01)
    assert caveats.curve_accuracy(106) == pytest.approx(0.944, abs=0.01)
    assert caveats.curve_accuracy(1100) == pytest.approx(0.98, abs=0.005)
    assert caveats.curve_accuracy(5) < caveats.curve_accuracy(21) < caveats.curve_accuracy(100)


def test_few_photos_names_the_smallest_class_its_count_and_the_expected_accuracy():
    said = caveats.few_photos({"Tomato___healthy": 21, "Tomato___Early_blight": 30, "Tomato___Late_blight": 40})
    assert said is not None
    assert (
        "every class is short: Tomato___healthy has 21, Tomato___Early_blight has 30, Tomato___Late_blight has 40"
        in said
    )
    assert f"about {caveats.curve_accuracy(21):.0%} right" in said and "90%" in said
    assert "90.2%" in said and "94.4%" in said and "at least 100 a class" in said
    even = caveats.few_photos({"a": 21, "b": 21, "c": 21})
    assert even is not None and "every class has 21 training photos" in even


def test_few_photos_names_every_short_class_not_only_the_smallest():
    """A newcomer's four classes of 21 to 30 photos: the warning named the pepper class alone, read as "only pepper
    is short"."""
    said = caveats.few_photos({"Pepper": 21, "Potato___healthy": 24, "Potato___Late_blight": 30, "Corn": 150})
    assert "Pepper has 21, Potato___healthy has 24, Potato___Late_blight has 30 training photos" in said
    assert "Corn" not in said and f"about {caveats.curve_accuracy(21):.0%} right" in said
    every = caveats.few_photos({"a": 21, "b": 30})
    assert "every class is short: a has 21, b has 30 training photos" in every
    many = caveats.few_photos({f"c{i:02d}": 10 + i for i in range(9)})
    assert "c05 has 15" in many and "c06" not in many and "and 3 more classes under 100" in many


def test_enough_photos_say_nothing():
    assert caveats.few_photos({"a": 100, "b": 250}) is None
    assert caveats.few_photos({}) is None


@pytest.mark.parametrize(
    ("right", "n", "classes", "said"),
    [
        (3, 12, 3, "chance"),  # the 25% on 12 photos: below chance
        (5, 12, 3, "chance"),  # its 41.7%: above a third, but guessing does as well one time in three, on a split
        # that tells a model halfway to every photo right (8 of 12: p = 0.02)
        (9, 12, 3, None),  # 75%: guessing gets there less than one time in a hundred
        (2, 4, 2, "chance"),  # at chance: no better, however few the photos
        (2, 3, 3, "too few"),  # 66.7% of 3: even 3 of 3 would not tell 3 classes apart from guessing at p < 0.05
        (4, 4, 2, "too few"),  # every photo right, 4 of 4 between 2 classes: guessing does it one time in 16
        (5, 6, 2, "too few"),  # 83.3% of 6: p = 0.11; 4 of 6 (75%) would not tell either
        (3, 3, 3, None),  # p = 1/27
        (60, 100, 2, None),  # 60 of 100 between two classes: p = 0.028, beyond chance
        (55, 100, 2, "chance"),  # 55 of 100: p = 0.18, on a split that tells 75 of 100
    ],
)
def test_no_better_than_chance_or_too_few_test_photos_to_tell_by_a_binomial_test(right, n, classes, said):
    p = caveats.binomial_p_at_least(right, n, 1 / classes)
    chance = caveats.no_better_than_chance(right, n, classes)
    too_few = caveats.too_few_test_photos(right, n, classes)
    assert (said is None) == (p < caveats.CHANCE_P) == (chance is None and too_few is None)
    if said == "chance":
        assert too_few is None
        assert "no better than chance on its test split" in chance and "Do not serve it" in chance
        assert f"{right} of {n} photos right" in chance and f"{1 / classes:.1%}" in chance
    if said == "too few":
        assert chance is None and "no better than chance" not in too_few
        assert too_few.startswith(f"too few test photos to tell it from chance: {right} of {n} right")
        assert "Add photos" in too_few


def test_a_perfect_model_on_four_test_photos_is_too_few_to_tell_and_says_how_many_would():
    """The lab's case: 2 classes, 4 test photos, all 4 right was "no better than chance ... Do not serve it"."""
    said = caveats.too_few_test_photos(4, 4, 2, test_share=0.15)
    assert said is not None and caveats.no_better_than_chance(4, 4, 2) is None
    assert "too few test photos to tell it from chance: 4 of 4 right (100.0%)" in said
    assert "gets all 4 right one time in 16" in said
    need = int(said.split("at that share right, ")[1].split()[0])
    assert need == 5 and caveats.binomial_p_at_least(5, 5, 0.5) < caveats.CHANCE_P  # 5 of 5 would tell
    assert "15% of each class's photos" in said
    assert caveats.split_too_small(4, 2) and not caveats.split_too_small(12, 3)


def test_binomial_tail_is_exact():
    assert caveats.binomial_p_at_least(0, 5, 0.3) == pytest.approx(1.0)
    assert caveats.binomial_p_at_least(3, 3, 1 / 3) == pytest.approx(1 / 27)
    assert caveats.binomial_p_at_least(2, 3, 0.5) == pytest.approx(0.5)


def test_binomial_tail_on_a_test_split_of_thousands_of_photos():
    """A lab's big test split (2,336 orchard photos in 5 classes) made `leafdoc train` fail at its very end:
    comb(2336, i) does not fit in a float. The tail is that of SciPy's binomial distribution."""
    from scipy.stats import binom

    for right, n, classes in [(1780, 2336, 5), (480, 2336, 5), (500, 2336, 5), (5200, 5221, 34), (40, 5221, 34)]:
        want = float(binom.sf(right - 1, n, 1 / classes))
        assert caveats.binomial_p_at_least(right, n, 1 / classes) == pytest.approx(want, rel=1e-9, abs=1e-300)
    assert caveats.no_better_than_chance(1780, 2336, 5) is None  # 76.2% among 5 classes
    said = caveats.no_better_than_chance(480, 2336, 5)  # 20.5%: guessing does as well
    assert said is not None and "480 of 2336 photos right" in said


def test_a_class_left_without_validation_or_test_photos_is_named():
    """A class of five photos, four of them one leaf: validation got none, and nothing said so (its validation
    figures then say nothing of it)."""
    assert (
        caveats.empty_held_out({"Tomato___healthy": {"val": 3, "test": 3}, "Potato___healthy": {"val": 1, "test": 1}})
        is None
    )
    said = caveats.empty_held_out(
        {"Potato___healthy": {"val": 0, "test": 1}, "Tomato___healthy": {"val": 3, "test": 3}, "Corn": {}}
    )
    assert said.startswith(
        "Corn has no validation and no test photo; Potato___healthy has no validation photo: the figures on those "
        "splits say nothing of them."
    ), said
    assert "Tomato" not in said and "copies of one leaf" in said
