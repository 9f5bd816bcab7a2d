//! The dashboard's two languages: Indonesian (the default) and English. Texts live in
//! `templates/web/i18n/{id,en}.json`, embedded in the binary; templates read them as `tr.KEY`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Object, Value};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Lang {
    #[default]
    #[serde(rename = "id")]
    Id,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim() {
            "id" => Some(Lang::Id),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

const ID_TEXTS: &str = include_str!("../../../../templates/web/i18n/id.json");
const EN_TEXTS: &str = include_str!("../../../../templates/web/i18n/en.json");

/// One language's texts, as templates see them. A key that is missing is an error when the
/// template prints it (the page tests render every page in both languages).
#[derive(Debug)]
pub struct Texts(BTreeMap<String, String>);

impl Object for Texts {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .get(key.as_str()?)
            .map(|text| Value::from(text.as_str()))
    }
}

impl Texts {
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.0.get(key).map_or(key, String::as_str)
    }

    /// The text of `key`, if there is one.
    pub fn find(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

fn parse(source: &str, which: &str) -> Arc<Texts> {
    // The files are part of the build; the unit tests below parse both.
    let map: BTreeMap<String, String> = serde_json::from_str(source)
        .unwrap_or_else(|e| panic!("templates/web/i18n/{which}.json is not valid: {e}"));
    Arc::new(Texts(map))
}

pub fn texts(lang: Lang) -> &'static Arc<Texts> {
    static ID: OnceLock<Arc<Texts>> = OnceLock::new();
    static EN: OnceLock<Arc<Texts>> = OnceLock::new();
    match lang {
        Lang::Id => ID.get_or_init(|| parse(ID_TEXTS, "id")),
        Lang::En => EN.get_or_init(|| parse(EN_TEXTS, "en")),
    }
}

/// The texts as a template value (`tr`).
pub fn value(lang: Lang) -> Value {
    Value::from_dyn_object(texts(lang).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys_and_no_empty_text() {
        let id = texts(Lang::Id);
        let en = texts(Lang::En);
        let id_keys: Vec<_> = id.0.keys().collect();
        let en_keys: Vec<_> = en.0.keys().collect();
        assert_eq!(id_keys, en_keys);
        for (key, text) in id.0.iter().chain(en.0.iter()) {
            assert!(!text.trim().is_empty(), "{key} is empty");
        }
    }
}
