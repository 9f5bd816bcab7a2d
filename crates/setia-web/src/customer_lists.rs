//! The lists of customers that the dashboard's Customers page, its CSV export and
//! `GET /api/v1/customers` share: which list a query names, and one page of it.

use setia_core::segment::Segment;
use setia_core::MerchantId;
use setia_store::dashboard::{CustomerFilter, CustomerListRow, ValueCursor};
use setia_store::{PageRequest, Store, StoreError};

/// The longest search text taken; more is cut.
pub const MAX_SEARCH_CHARS: usize = 100;

/// A list of a merchant's customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomerList {
    /// Name, email or external id containing the text (any case), newest first.
    Search(String),
    /// Every customer, newest first.
    All,
    /// An RFM segment's customers, highest 12-month CLV first.
    Segment(Segment),
    /// Repeat customers whose P(alive) fell under 0.5, highest 12-month CLV first.
    AtRisk,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("segment {0:?} is not one of the ten RFM segments")]
    UnknownSegment(String),
    #[error("cursor {0:?} is not one this list gave out")]
    BadCursor(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The search text taken from a query: trimmed, at most [`MAX_SEARCH_CHARS`] characters.
pub fn search_text(q: &str) -> String {
    q.trim().chars().take(MAX_SEARCH_CHARS).collect()
}

impl CustomerList {
    /// A search (`q`) wins over a segment, a segment over `otherwise`; an unknown segment
    /// is an error.
    pub fn named(q: &str, segment: &str, otherwise: CustomerList) -> Result<Self, ListError> {
        let q = search_text(q);
        let segment = segment.trim();
        let segment = if segment.is_empty() {
            None
        } else {
            Some(Segment::parse(segment).ok_or_else(|| ListError::UnknownSegment(segment.into()))?)
        };
        Ok(match segment {
            _ if !q.is_empty() => CustomerList::Search(q),
            Some(segment) => CustomerList::Segment(segment),
            None => otherwise,
        })
    }

    pub fn mode(&self) -> &'static str {
        match self {
            CustomerList::Search(_) => "search",
            CustomerList::All => "all",
            CustomerList::Segment(_) => "segment",
            CustomerList::AtRisk => "at_risk",
        }
    }

    /// A page of the list after `cursor` (empty: the first page; otherwise as the previous
    /// page gave it), and the next page's cursor.
    pub async fn page(
        &self,
        store: &dyn Store,
        merchant: &MerchantId,
        cursor: &str,
        limit: u32,
    ) -> Result<(Vec<CustomerListRow>, Option<String>), ListError> {
        let bad_cursor = || ListError::BadCursor(cursor.chars().take(40).collect());
        let by_id = |filter: CustomerFilter| async move {
            let before = match cursor {
                "" => None,
                text => Some(
                    text.parse::<i64>()
                        .ok()
                        .filter(|id| *id > 0)
                        .ok_or_else(bad_cursor)?,
                ),
            };
            let page = store
                .customer_list(merchant, &filter, PageRequest { before, limit })
                .await?;
            Ok::<_, ListError>((page.items, page.next_cursor.map(|c| c.to_string())))
        };
        let after = || match cursor {
            "" => Ok(None),
            text => ValueCursor::parse(text).map(Some).ok_or_else(bad_cursor),
        };
        let page = match self {
            CustomerList::Search(q) => return by_id(CustomerFilter::Search(q.clone())).await,
            CustomerList::All => return by_id(CustomerFilter::All).await,
            CustomerList::Segment(segment) => {
                store
                    .segment_by_value(merchant, segment.as_str(), after()?, limit)
                    .await?
            }
            CustomerList::AtRisk => store.at_risk_by_value(merchant, after()?, limit).await?,
        };
        Ok((page.items, page.next_cursor.map(|c| c.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_search_wins_then_a_segment_then_the_default() {
        let named = |q, segment| CustomerList::named(q, segment, CustomerList::AtRisk).unwrap();
        assert_eq!(
            named(" Siti ", "loyal"),
            CustomerList::Search("Siti".into())
        );
        assert_eq!(named("", "loyal"), CustomerList::Segment(Segment::Loyal));
        assert_eq!(named(" ", ""), CustomerList::AtRisk);
        assert!(matches!(
            CustomerList::named("", "royal", CustomerList::All),
            Err(ListError::UnknownSegment(s)) if s == "royal"
        ));
        let long = "x".repeat(500);
        assert_eq!(
            named(&long, ""),
            CustomerList::Search("x".repeat(MAX_SEARCH_CHARS))
        );
    }
}
