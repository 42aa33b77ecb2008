// What the offline page says, in the language chosen, from the texts model.json carries (offline/texts.py): the
// server's catalog messages put together as abstain.decide and answer.refusal_message put them, so a refusal reads
// as the server's does. Pure functions: tests/unit/test_offline_words.py runs them in Node against the server.

// str.format with named fields: "{names} or {last}"
export function fill(template, params = {}) {
  return template.replace(/\{(\w+)\}/g, (whole, key) => (key in params ? String(params[key]) : whole));
}

// i18n.Rendering of a list: "A", "A or B", "A, B or C" (the joiner's template says the last link)
export function joinList(items, template) {
  if (items.length <= 1) return items.join("");
  return fill(template, { names: items.slice(0, -1).join(", "), last: items[items.length - 1] });
}

// A label's crop ("Tomato___Early_blight": "Tomato"). fieldcrops.crop_of: a label without the three underscores is its
// own "crop" to the field-photo check, as on the server; words/labels.names_crop: only a label with them is of a crop
// the grower can name (a lab's "late blight", "healthy" are of none: never in a crop's labels, never a crop in the
// picker, which model.json's `crops` fill).
export const namesCrop = (label) => label.includes("___");
export const cropOf = (label) => label.split("___")[0];

export function pretty(label) {
  return label.split("___").map((p) => p.replaceAll("_", " ").replace(/\s+/g, " ").trim()).filter(Boolean).join(" — ");
}

export function title(texts, label) {
  const entry = texts.advice[label];
  return entry ? entry.title : pretty(label);
}

// The words of a refusal: `decision` is { reason, candidates (labels), problems ([{code, params}]), crop }.
export function refusal(texts, decision) {
  const t = texts.templates;
  if (decision.reason === "poor_photo") {
    const each = decision.problems.map((p) => fill(texts.problems[p.code], p.params || {}));
    return fill(t.poor_photo, { problems: joinList(each, t.semicolons) });
  }
  if (decision.reason === "not_a_leaf") return t.not_a_leaf;
  if (decision.reason === "unlike_training") return (decision.crop && texts.lab_only[decision.crop]) || t.unlike_training;
  if (decision.reason === "unknown_leaf") return t.unknown_leaf; // a leaf of a crop or condition it was not taught
  if (decision.single) return texts.single_label[decision.crop]; // a crop known by one label only, named by the grower
  // the crop named all but ruled out by the model, which sees another condition (cropfirst.crop_mismatch)
  if (decision.seen) return fill(t.crop_mismatch, { seen: title(texts, decision.seen), crop: texts.crops[decision.crop] });
  const names = decision.candidates.map((label) => title(texts, label));
  // abstain.unsure_words: "what this is" with a healthy leaf among them; several crops: naming the crop narrows it
  const healthy = decision.candidates.some((label) => label.toLowerCase().includes("healthy")); // labels.is_healthy
  const crops = new Set(decision.candidates.filter(namesCrop).map(cropOf));
  const advice = crops.size > 1 ? t.photo_advice_or_crop : t.photo_advice;
  const could = fill(t.could_be, { names: joinList(names, t.or) });
  const said = fill(healthy ? t.unsure_what : t.unsure, { could_be: could, photo_advice: advice });
  // lookalikes.tell_apart_words: "To tell A from B: ..." for each pair the advice says how to tell apart
  const hows = [];
  decision.candidates.forEach((a, i) => {
    for (const b of decision.candidates.slice(i + 1)) {
      const how = texts.how_to_tell[`${a}|${b}`];
      if (how) hows.push(fill(t.tell_apart, { a: title(texts, a), b: title(texts, b), how }));
    }
  });
  const message = [said, ...hows].join(" ").trim();
  return decision.strict ? `${message} ${texts.page.strict}` : message;
}

// photo_guide.said_framed: the framing note ("the leaf was small ...") goes with a framed photo, but not with a
// refusal that found no leaf or a photo to take again (texts.not_framed_with); null when it does not.
export function framedNote(texts, r) {
  if (!r.framed || (r.abstained && texts.not_framed_with.includes(r.reason))) return null;
  return texts.page.framed;
}

// lookalikes.urgent_lookalike_words: an answer of a milder condition whose urgent look-alike (late blight) is among
// its top `rule.top` guesses at `rule.floor` or more says to check for it, and how to tell them apart.
export function caution(texts, rule, label, top) {
  const entry = texts.advice[label];
  if (!entry || entry.urgent) return null;
  for (const item of top.slice(0, rule.top)) {
    const other = texts.advice[item.label];
    if (item.label === label || !other || !other.urgent || item.probability < rule.floor) continue;
    const how = texts.how_to_tell[`${label}|${item.label}`];
    if (!how) continue; // not a look-alike of this answer
    const words = { other: title(texts, item.label), urgent: texts.urgent[item.label], how };
    return { label: item.label, message: fill(texts.templates.urgent, words) };
  }
  return null;
}

// The browser's preferred language among the page's, else English.
export function preferred(available, wanted) {
  for (const tag of wanted || []) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (available.includes(primary)) return primary;
  }
  return available.includes("en") ? "en" : available[0];
}

// words/percent.share_words: a probability in whole percent, "100" for 1 exactly and "0" for 0 only: 0.995 <= p < 1
// is ">99", 0 < p < 0.005 is "<1" (a grower reads "100%" as certain), the rest rounded half up
export function shareWords(p) {
  p = Number(p);
  if (p >= 0.995) return ">99";
  if (!(p >= 0.005)) return "<1"; // NaN too
  return String(Math.floor(100 * p + 0.5));
}

// words/percent.percent_words: with the sign as the language sets it (texts.percent: "{share}%", "{share} %")
export function percentWords(texts, p) {
  return fill(texts.percent, { share: shareWords(p) });
}

// ui/history.answer_words: the answer in a few words, a refusal with no figure
export function answerWords(texts, r) {
  const h = texts.history;
  if (r.abstained) {
    if (!r.candidates.length) return h.not_sure;
    return fill(h.not_sure_between, { names: joinList(r.candidates.map((c) => title(texts, c)), texts.templates.or) });
  }
  return fill(h.sure, { label: title(texts, r.top[0].label), percent: percentWords(texts, r.top[0].probability) });
}
