//! Product recommendations from purchase history: "customers who bought this also bought".
//!
//! Why item-to-item: a merchant has a few hundred to a few thousand products and up to a
//! million customers, most with a handful of purchases. Comparing products (by the customers
//! they share) is stable and cheap where comparing customers is neither (Linden, Smith and
//! York, *Amazon.com recommendations: item-to-item collaborative filtering*, 2003).
//!
//! The method, on the distinct (customer, product) pairs of the order lines:
//! - H(u), the history of customer u: the distinct products u bought, capped at
//!   `max_history` (the products with most lines, ties lower id first) so that a few very
//!   large buyers cannot dominate the co-occurrence counts nor the run time;
//! - n_i, the distinct buyers of product i (over all lines); c_ij, the customers with both i
//!   and j in their history; cos(i, j) = c_ij / sqrt(n_i n_j), which keeps best-sellers
//!   from being everyone's neighbour;
//! - the neighbours of i: the in-stock j ≠ i with c_ij ≥ 1, best `neighbours` by cos;
//! - score(u, j) = Σ_{i ∈ H(u)} cos(i, j) over those neighbour lists, for every j that u
//!   never bought; the best `per_customer` make u's list, filled up from the most popular
//!   in-stock products when co-occurrence offers fewer.
//!
//! Every ranking breaks ties by more distinct buyers, then lower product id. To make that
//! tie-break free, products are numbered in exactly that order ("codes": code 0 has the
//! most buyers), so ordering by code *is* the tie-break and the popular list is the
//! in-stock codes in order.
//!
//! All of it is plain loops, without Polars. The distinct pairs are one packed (customer,
//! product index) key per line, sorted in parallel and counted in runs; the product table
//! follows from them. The rest works on arrays indexed by product code: the co-occurrence
//! counts (every pair of every history into one tally), the similarities (one pass over the
//! tally, each product keeping its best partners in a bounded heap) and the scoring (one
//! score row per customer, in parallel over customers). Polars' joins and group-bys
//! materialised k² pairs and 30 k candidates for a customer with k products, and every pair
//! of products twice; the loops keep the tally and the score row of a catalogue of a few
//! thousand products in cache and hold nothing per customer beyond its list. Measured on
//! the 2-core machine at 1 M customers and 10 M lines with the sandbox's 344 products
//! (bench/recommend): 22.5 s with Polars throughout, 2.9 s with its distinct pairs alone,
//! 1.9–2.1 s and half the peak memory without it.
//!
//! **Determinism.** Scores are summed in fixed point (cos × 2^40 rounded, as i64), so they
//! are exact whatever the order of their terms; every ranking has a total order. The same
//! input always gives the same output, on any machine and any number of threads.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::ops::Range;

use rayon::prelude::*;

use crate::error::AnalyticsError;

/// Length of [`Recommendations::popular`].
const POPULAR_LIMIT: usize = 100;

/// Fixed-point scale of the similarity weights summed into scores: 2^40 keeps twelve
/// decimal digits; with at most [`MAX_HISTORY`] terms a score stays below 2^60.
const WEIGHT_SCALE: f64 = (1_u64 << 40) as f64;

/// The mark of a bought product in a customer's score row: far below minus any real score
/// (at most `MAX_HISTORY` × 2^40 < 2^60), so a bought product's score stays negative
/// whatever is added to it, and only positive scores are candidates.
const BOUGHT_WEIGHT: i64 = i64::MIN / 4;

/// A ceiling on `max_history` that keeps every score below 2^60 (a customer with more
/// than a million distinct products is not a customer).
const MAX_HISTORY: usize = 1 << 20;

/// One entry per order line of a countable purchase (attributed, not sandbox, not
/// refunded), in any order; the same (customer, product) may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BasketColumns {
    pub customer: Vec<i64>,
    pub product: Vec<i64>,
}

/// Every product of the merchant with whether it can be recommended. A product listed
/// twice is in stock if any of its entries says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueColumns {
    pub product: Vec<i64>,
    pub in_stock: Vec<bool>,
}

/// Knobs of [`recommend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecommendConfig {
    /// Products recommended to each customer.
    pub per_customer: usize,
    /// Entries of each product's `related` list.
    pub related_per_product: usize,
    /// Distinct products per customer used for co-occurrence and scoring (the ones with
    /// most lines, ties lower id first).
    pub max_history: usize,
    /// Most similar products kept per product for scoring.
    pub neighbours: usize,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            per_customer: 10,
            related_per_product: 10,
            max_history: 50,
            neighbours: 30,
        }
    }
}

/// What [`recommend`] returns. Products are the caller's ids.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recommendations {
    /// Customers with at least one line, ascending; `products[k]` is customer
    /// `customers[k]`'s list.
    pub customers: Vec<i64>,
    pub products: Vec<Vec<i64>>,
    /// In-stock products by distinct buyers, most first (ties: lower product id first), at
    /// most 100: the list for customers without lines. In-stock products nobody bought yet
    /// come last, by id.
    pub popular: Vec<i64>,
    /// For every product that has buyers (ascending product id): the products bought
    /// together with it, best first, at most `related_per_product`, each with its cosine
    /// similarity; never itself, never out of stock; only pairs with at least one common
    /// buyer (within the capped histories).
    pub related: Vec<(i64, Vec<(i64, f64)>)>,
}

/// Recommends products to every customer of `basket` (see the module documentation for
/// the method). Pure and synchronous: call it from `spawn_blocking`.
pub fn recommend(
    basket: &BasketColumns,
    catalogue: &CatalogueColumns,
    config: &RecommendConfig,
) -> Result<Recommendations, AnalyticsError> {
    if basket.customer.len() != basket.product.len() {
        return Err(AnalyticsError::BasketLengthMismatch {
            customer: basket.customer.len(),
            product: basket.product.len(),
        });
    }
    if catalogue.product.len() != catalogue.in_stock.len() {
        return Err(AnalyticsError::CatalogueLengthMismatch {
            product: catalogue.product.len(),
            in_stock: catalogue.in_stock.len(),
        });
    }

    let (pairs, products) = distinct_pairs_and_products(basket, catalogue);
    let popular: Vec<u32> = products.popular().collect();
    let purchases = CustomerPurchases::build(pairs, config.max_history.min(MAX_HISTORY));

    let pair_counts = co_occurrence(&purchases.history, products.id.len() as u64);
    let similar = SimilarProducts::build(
        &pair_counts,
        &products,
        config.neighbours.max(config.related_per_product),
    );
    let lists = rank_for_customers(&purchases, &similar, &popular, config);

    Ok(Recommendations {
        customers: purchases.customers,
        products: lists
            .into_iter()
            .map(|codes| codes.into_iter().map(|code| products.id(code)).collect())
            .collect(),
        popular: popular.iter().map(|&code| products.id(code)).collect(),
        related: similar.related(&products, config.related_per_product),
    })
}

/// Every product of the catalogue or the basket, numbered by code (most buyers first, ties
/// lower id first).
struct ProductTable {
    id: Vec<i64>,
    in_stock: Vec<bool>,
    buyers: Vec<u32>,
}

impl ProductTable {
    fn id(&self, code: u32) -> i64 {
        self.id[code as usize]
    }

    /// In-stock codes, most popular first, at most [`POPULAR_LIMIT`].
    fn popular(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.id.len() as u32)
            .filter(|&code| self.in_stock[code as usize])
            .take(POPULAR_LIMIT)
    }
}

/// The distinct (customer, product) pairs of the lines, sorted by customer then product
/// id, as parallel columns.
struct PairColumns {
    customer: Vec<i64>,
    code: Vec<u32>,
    /// Lines of the pair (how often the customer bought the product).
    lines: Vec<u32>,
}

/// Collapses the lines to distinct (customer, product) pairs and builds the product table:
/// each line becomes a key (one packed u64, or a (customer, index) pair when the customers
/// are too far apart to pack), the keys are sorted in parallel, and each run of equal keys
/// is one pair with its number of lines.
fn distinct_pairs_and_products(
    basket: &BasketColumns,
    catalogue: &CatalogueColumns,
) -> (PairColumns, ProductTable) {
    let known = KnownProducts::new(basket, catalogue);
    let product_count = known.id.len() as u64;
    let lines = basket
        .customer
        .iter()
        .copied()
        .zip(basket.product.iter().copied());
    let customer_range = basket
        .customer
        .iter()
        .min()
        .zip(basket.customer.iter().max());
    let mut pairs = PairColumns {
        customer: Vec::new(),
        code: Vec::new(),
        lines: Vec::new(),
    };
    let mut push_run = |customer: i64, index: u32, run: usize| {
        pairs.customer.push(customer);
        pairs.code.push(index);
        pairs.lines.push(u32::try_from(run).unwrap_or(u32::MAX));
    };
    match customer_range {
        Some((&first, &last)) if fits_packed(first, last, product_count) => {
            // One u64 key, (customer offset) × P + index, sorts much faster than two.
            let mut keys: Vec<u64> = lines
                .map(|(customer, product)| {
                    (customer - first) as u64 * product_count + u64::from(known.index(product))
                })
                .collect();
            keys.par_sort_unstable();
            for run in keys.chunk_by(|a, b| a == b) {
                let customer = first + (run[0] / product_count) as i64;
                push_run(customer, (run[0] % product_count) as u32, run.len());
            }
        }
        _ => {
            let mut keys: Vec<(i64, u32)> = lines
                .map(|(customer, product)| (customer, known.index(product)))
                .collect();
            keys.par_sort_unstable();
            for run in keys.chunk_by(|a, b| a == b) {
                push_run(run[0].0, run[0].1, run.len());
            }
        }
    }
    let mut buyers = vec![0_u32; known.id.len()];
    for &index in &pairs.code {
        buyers[index as usize] += 1;
    }
    // Codes: most buyers first, then lower id (indexes are in id order).
    let mut by_code: Vec<u32> = (0..known.id.len() as u32).collect();
    by_code.sort_unstable_by_key(|&index| (Reverse(buyers[index as usize]), index));
    let mut code_of_index = vec![0_u32; by_code.len()];
    for (code, &index) in by_code.iter().enumerate() {
        code_of_index[index as usize] = code as u32;
    }
    for code in &mut pairs.code {
        *code = code_of_index[*code as usize];
    }
    let products = ProductTable {
        id: by_code
            .iter()
            .map(|&index| known.id[index as usize])
            .collect(),
        in_stock: by_code
            .iter()
            .map(|&index| known.in_stock[index as usize])
            .collect(),
        buyers: by_code
            .iter()
            .map(|&index| buyers[index as usize])
            .collect(),
    };
    (pairs, products)
}

/// Product ids spanning at most this many values are indexed by a table (4 bytes each).
const DENSE_PRODUCT_SPAN: i128 = 1 << 24;

/// Every product the catalogue lists or a line names, in id order ("index"), with whether
/// it is in stock: listed as in stock at least once. A bought product missing from the
/// catalogue is known, but not in stock.
struct KnownProducts {
    id: Vec<i64>,
    in_stock: Vec<bool>,
    index: ProductIndex,
}

enum ProductIndex {
    /// Ids within a small span (the store's keys, as a rule): `index[id - first]`.
    Dense {
        first: i64,
        index: Vec<u32>,
    },
    Sparse(HashMap<i64, u32>),
}

impl KnownProducts {
    fn new(basket: &BasketColumns, catalogue: &CatalogueColumns) -> KnownProducts {
        const KNOWN: u32 = 1;
        const IN_STOCK: u32 = 2;
        let listed = catalogue.product.iter().copied().zip(
            catalogue
                .in_stock
                .iter()
                .map(|&in_stock| KNOWN | if in_stock { IN_STOCK } else { 0 }),
        );
        let entries = listed.chain(basket.product.iter().map(|&product| (product, KNOWN)));
        let ids = catalogue.product.iter().chain(&basket.product);
        let (mut id, mut in_stock) = (Vec::new(), Vec::new());
        let index = match ids.clone().min().zip(ids.max()) {
            Some((&first, &last)) if i128::from(last) - i128::from(first) < DENSE_PRODUCT_SPAN => {
                // The flags first, then each known slot's index in their place.
                let mut slots = vec![0_u32; (last - first) as usize + 1];
                for (product, flags) in entries {
                    slots[(product - first) as usize] |= flags;
                }
                for (offset, slot) in slots.iter_mut().enumerate() {
                    if *slot != 0 {
                        id.push(first + offset as i64);
                        in_stock.push(*slot & IN_STOCK != 0);
                        *slot = (id.len() - 1) as u32;
                    }
                }
                ProductIndex::Dense {
                    first,
                    index: slots,
                }
            }
            _ => {
                let mut flags: BTreeMap<i64, u32> = BTreeMap::new();
                for (product, flag) in entries {
                    *flags.entry(product).or_insert(0) |= flag;
                }
                let mut index = HashMap::with_capacity(flags.len());
                for (position, (product, flag)) in flags.into_iter().enumerate() {
                    id.push(product);
                    in_stock.push(flag & IN_STOCK != 0);
                    index.insert(product, position as u32);
                }
                ProductIndex::Sparse(index)
            }
        };
        KnownProducts {
            id,
            in_stock,
            index,
        }
    }

    /// The index of a product of the basket or the catalogue.
    fn index(&self, product: i64) -> u32 {
        match &self.index {
            ProductIndex::Dense { first, index } => index[(product - first) as usize],
            ProductIndex::Sparse(index) => index[&product],
        }
    }
}

/// Whether (customer − first) × products + index fits a u64 key for every customer in
/// first..=last (and the offset fits the i64 subtraction).
fn fits_packed(first: i64, last: i64, product_count: u64) -> bool {
    let span = (i128::from(last) - i128::from(first)) as u128;
    span < (1_u128 << 62) && (span + 1) * u128::from(product_count) < (1_u128 << 63)
}

/// Product codes grouped by customer: customer c's codes are `codes[starts[c]..starts[c + 1]]`.
struct CustomerRows {
    codes: Vec<u32>,
    starts: Vec<usize>,
}

impl CustomerRows {
    fn customer_count(&self) -> usize {
        self.starts.len() - 1
    }

    fn codes_of(&self, customer: usize) -> &[u32] {
        &self.codes[self.starts[customer]..self.starts[customer + 1]]
    }
}

/// The customers, everything each bought, and their capped histories.
struct CustomerPurchases {
    /// Customer ids, ascending; a customer's index is its position here.
    customers: Vec<i64>,
    bought: CustomerRows,
    history: CustomerRows,
}

impl CustomerPurchases {
    /// Cuts the pairs (sorted by customer, then product id) into per-customer runs. The
    /// history is the run itself, or its `max_history` pairs with most lines when longer
    /// (a stable sort keeps lower product ids first among equal lines).
    fn build(pairs: PairColumns, max_history: usize) -> Self {
        let PairColumns {
            customer: customer_ids,
            code: codes,
            lines,
        } = pairs;
        let mut customers = Vec::new();
        let mut bought_starts = Vec::new();
        let mut history_codes = Vec::new();
        let mut history_starts = Vec::new();
        let mut run = Vec::new();
        let mut end = 0;
        for same_customer in customer_ids.chunk_by(|a, b| a == b) {
            let rows = end..end + same_customer.len();
            end = rows.end;
            customers.push(same_customer[0]);
            bought_starts.push(rows.start);
            history_starts.push(history_codes.len());
            if rows.len() <= max_history {
                history_codes.extend_from_slice(&codes[rows]);
            } else {
                run.clear();
                run.extend(rows);
                run.sort_by_key(|&row| Reverse(lines[row]));
                run.truncate(max_history);
                history_codes.extend(run.iter().map(|&row| codes[row]));
            }
        }
        bought_starts.push(codes.len());
        history_starts.push(history_codes.len());

        CustomerPurchases {
            customers,
            bought: CustomerRows {
                codes,
                starts: bought_starts,
            },
            history: CustomerRows {
                codes: history_codes,
                starts: history_starts,
            },
        }
    }
}

/// c_ij for every pair i < j with a common customer: every pair of every (capped) history,
/// counted in a [`PairTally`].
fn co_occurrence(history: &CustomerRows, product_count: u64) -> PairTally {
    let mut tally = PairTally::new(product_count);
    for customer in 0..history.customer_count() {
        let codes = history.codes_of(customer);
        for (k, &first) in codes.iter().enumerate() {
            for &second in &codes[k + 1..] {
                tally.add(first.min(second), first.max(second));
            }
        }
    }
    tally
}

/// Running c_ij: a dense upper triangle (one u32 per pair i < j) while it stays within
/// 128 MiB, i.e. up to about 8,000 products; a hash map on the packed pair i × P + j beyond.
struct PairTally {
    product_count: u64,
    counts: PairCounts,
}

enum PairCounts {
    Dense(Vec<u32>),
    Sparse(HashMap<u64, u32>),
}

impl PairTally {
    const DENSE_CELLS: u64 = 1 << 25;

    fn new(product_count: u64) -> Self {
        let cells = product_count * product_count.saturating_sub(1) / 2;
        let counts = if cells <= Self::DENSE_CELLS {
            PairCounts::Dense(vec![0; cells as usize])
        } else {
            PairCounts::Sparse(HashMap::new())
        };
        PairTally {
            product_count,
            counts,
        }
    }

    /// Counts one customer having both `first` and `second` (`first` < `second`).
    fn add(&mut self, first: u32, second: u32) {
        let (i, j) = (u64::from(first), u64::from(second));
        let p = self.product_count;
        match &mut self.counts {
            // Row-major position of (i, j) in the upper triangle.
            PairCounts::Dense(cells) => {
                cells[(i * (2 * p - i - 1) / 2 + (j - i - 1)) as usize] += 1
            }
            PairCounts::Sparse(map) => *map.entry(i * p + j).or_default() += 1,
        }
    }

    /// Calls `visit(i, j, common)` for every counted pair i < j, in no particular order.
    fn for_each(&self, mut visit: impl FnMut(u32, u32, u32)) {
        let p = self.product_count;
        match &self.counts {
            PairCounts::Dense(cells) => {
                let mut cells = cells.iter();
                for first in 0..p {
                    for (second, &count) in (first + 1..p).zip(cells.by_ref()) {
                        if count > 0 {
                            visit(first as u32, second as u32, count);
                        }
                    }
                }
            }
            PairCounts::Sparse(map) => {
                for (&pair, &count) in map {
                    visit((pair / p) as u32, (pair % p) as u32, count);
                }
            }
        }
    }
}

/// For every product, its similar in-stock products, best first (cos descending, then
/// code), as runs of parallel columns: product `i`'s run is `starts[i]..starts[i + 1]`.
struct SimilarProducts {
    starts: Vec<usize>,
    similar: Vec<u32>,
    cosine: Vec<f64>,
}

/// A similar product, ordered from worse to better: higher cosine, then lower code (more
/// buyers, then lower id).
#[derive(Debug, Clone, Copy)]
struct Partner {
    cosine: f64,
    code: u32,
}

impl Ord for Partner {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cosine
            .total_cmp(&other.cosine)
            .then(other.code.cmp(&self.code))
    }
}

impl PartialOrd for Partner {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Partner {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Partner {}

impl SimilarProducts {
    /// Turns the pair counts into cosine similarities in both directions and keeps the
    /// best `keep` in-stock partners of every product: one pass over the tally, each
    /// product keeping its best so far in a bounded heap.
    fn build(tally: &PairTally, products: &ProductTable, keep: usize) -> Self {
        let product_count = products.id.len();
        let mut best: Vec<BinaryHeap<Reverse<Partner>>> =
            (0..product_count).map(|_| BinaryHeap::new()).collect();
        let mut offer = |product: u32, partner: Partner| {
            let heap = &mut best[product as usize];
            if heap.len() < keep {
                heap.push(Reverse(partner));
            } else if let Some(mut worst) = heap.peek_mut() {
                if partner > worst.0 {
                    *worst = Reverse(partner);
                }
            }
        };
        if keep > 0 {
            tally.for_each(|i, j, common| {
                let (buyers_i, buyers_j) =
                    (products.buyers[i as usize], products.buyers[j as usize]);
                let cosine = f64::from(common) / (f64::from(buyers_i) * f64::from(buyers_j)).sqrt();
                if products.in_stock[j as usize] {
                    offer(i, Partner { cosine, code: j });
                }
                if products.in_stock[i as usize] {
                    offer(j, Partner { cosine, code: i });
                }
            });
        }
        let mut starts = Vec::with_capacity(product_count + 1);
        let mut similar = Vec::new();
        let mut cosine = Vec::new();
        starts.push(0);
        for heap in best {
            // Ascending order of Reverse(partner) is best first.
            for Reverse(partner) in heap.into_sorted_vec() {
                similar.push(partner.code);
                cosine.push(partner.cosine);
            }
            starts.push(similar.len());
        }
        SimilarProducts {
            starts,
            similar,
            cosine,
        }
    }

    /// The first `limit` of product `code`'s run.
    fn best(&self, code: usize, limit: usize) -> Range<usize> {
        let run = self.starts[code]..self.starts[code + 1];
        run.start..run.end.min(run.start + limit)
    }

    /// `related`: every product with buyers, by ascending id, with its best partners.
    fn related(&self, products: &ProductTable, limit: usize) -> Vec<(i64, Vec<(i64, f64)>)> {
        let mut related: Vec<(i64, Vec<(i64, f64)>)> = (0..products.id.len())
            .filter(|&code| products.buyers[code] > 0)
            .map(|code| {
                let partners = self
                    .best(code, limit)
                    .map(|row| (products.id(self.similar[row]), self.cosine[row]))
                    .collect();
                (products.id[code], partners)
            })
            .collect();
        related.sort_unstable_by_key(|(product, _)| *product);
        related
    }
}

/// Each customer's list, as codes: their best `per_customer` never-bought products by
/// score (ties: lower code), topped up from `popular` when fewer have a positive score.
///
/// One pass per customer over a score row indexed by code, in parallel over customers:
/// bought products are marked with [`BOUGHT_WEIGHT`], each history product adds its
/// neighbours' fixed-point weights, and only the touched entries are ranked and cleared.
fn rank_for_customers(
    purchases: &CustomerPurchases,
    similar: &SimilarProducts,
    popular: &[u32],
    config: &RecommendConfig,
) -> Vec<Vec<u32>> {
    let product_count = similar.starts.len() - 1;
    let neighbours: Vec<Range<usize>> = (0..product_count)
        .map(|code| similar.best(code, config.neighbours))
        .collect();
    let weights: Vec<i64> = similar
        .cosine
        .iter()
        .map(|cosine| (cosine * WEIGHT_SCALE).round() as i64)
        .collect();
    let mut lists = vec![Vec::new(); purchases.customers.len()];
    lists.par_iter_mut().enumerate().for_each_init(
        || ScoreRow::new(product_count),
        |row, (customer, list)| {
            for &code in purchases.bought.codes_of(customer) {
                row.add(code, BOUGHT_WEIGHT);
            }
            for &product in purchases.history.codes_of(customer) {
                for at in neighbours[product as usize].clone() {
                    row.add(similar.similar[at], weights[at]);
                }
            }
            row.best_into(list, config.per_customer);
            row.top_up(list, popular, config.per_customer);
            row.clear();
        },
    );
    lists
}

/// One customer's scores by product code, with the codes touched so far.
struct ScoreRow {
    score: Vec<i64>,
    touched: Vec<u32>,
    ranked: Vec<(Reverse<i64>, u32)>,
}

impl ScoreRow {
    fn new(product_count: usize) -> Self {
        ScoreRow {
            score: vec![0; product_count],
            touched: Vec::new(),
            ranked: Vec::new(),
        }
    }

    /// Adds a non-zero weight (a weight is at least 1: cos ≥ 1 / buyers ≫ 2^-40).
    fn add(&mut self, code: u32, weight: i64) {
        let score = &mut self.score[code as usize];
        if *score == 0 {
            self.touched.push(code);
        }
        *score += weight;
    }

    /// The best `limit` positive scores into `list`, by score descending, then code.
    fn best_into(&mut self, list: &mut Vec<u32>, limit: usize) {
        self.ranked.clear();
        if limit == 0 {
            return;
        }
        self.ranked.extend(
            self.touched
                .iter()
                .filter(|&&code| self.score[code as usize] > 0)
                .map(|&code| (Reverse(self.score[code as usize]), code)),
        );
        if self.ranked.len() > limit {
            self.ranked.select_nth_unstable(limit - 1);
            self.ranked.truncate(limit);
        }
        self.ranked.sort_unstable();
        list.extend(self.ranked.iter().map(|&(_, code)| code));
    }

    /// Fills `list` up to `limit` from `popular`, after [`ScoreRow::best_into`]: a short
    /// list took every positive score, so a code that scores zero is neither bought nor
    /// listed.
    fn top_up(&self, list: &mut Vec<u32>, popular: &[u32], limit: usize) {
        let free = popular
            .iter()
            .filter(|&&code| self.score[code as usize] == 0);
        list.extend(free.take(limit.saturating_sub(list.len())));
    }

    /// Back to all zeros, touching only what was touched.
    fn clear(&mut self) {
        for &code in &self.touched {
            self.score[code as usize] = 0;
        }
        self.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: i64 = 10;
    const B: i64 = 20;
    const C: i64 = 30;
    const D: i64 = 40;
    const E: i64 = 50;
    const F: i64 = 60;

    /// One line per (customer, product) listed.
    fn basket(customers: &[(i64, &[i64])]) -> BasketColumns {
        let mut basket = BasketColumns::default();
        for &(customer, products) in customers {
            for &product in products {
                basket.customer.push(customer);
                basket.product.push(product);
            }
        }
        basket
    }

    fn catalogue(in_stock: &[(i64, bool)]) -> CatalogueColumns {
        CatalogueColumns {
            product: in_stock.iter().map(|entry| entry.0).collect(),
            in_stock: in_stock.iter().map(|entry| entry.1).collect(),
        }
    }

    fn config(per_customer: usize) -> RecommendConfig {
        RecommendConfig {
            per_customer,
            ..RecommendConfig::default()
        }
    }

    fn list_of(result: &Recommendations, customer: i64) -> &[i64] {
        let index = result.customers.binary_search(&customer).unwrap();
        &result.products[index]
    }

    fn assert_related(result: &Recommendations, expected: &[(i64, &[(i64, f64)])]) {
        let products: Vec<i64> = result.related.iter().map(|entry| entry.0).collect();
        let expected_products: Vec<i64> = expected.iter().map(|entry| entry.0).collect();
        assert_eq!(products, expected_products);
        for ((product, partners), (_, expected_partners)) in result.related.iter().zip(expected) {
            let ids: Vec<i64> = partners.iter().map(|p| p.0).collect();
            let expected_ids: Vec<i64> = expected_partners.iter().map(|p| p.0).collect();
            assert_eq!(ids, expected_ids, "related to {product}");
            for (got, want) in partners.iter().zip(expected_partners.iter()) {
                assert!(
                    (got.1 - want.1).abs() < 1e-12,
                    "cos({product}, {}) = {}",
                    got.0,
                    got.1
                );
            }
        }
    }

    /// Six customers, six products (F is never bought).
    ///
    /// ```text
    /// customer 1: A B C      n: A 4, B 4, C 2, D 2, E 2, F 0
    /// customer 2: A B        popularity (codes): A B C D E F
    /// customer 3: B C D
    /// customer 4: A D        c: AB 3 (1,2,6), BC 2 (1,3), AC 1, AD 1, AE 1, BD 1, BE 1, CD 1
    /// customer 5: E          cos: AB 3/√16 = .75, BC 2/√8 ≈ .7071, CD 1/√4 = .5,
    /// customer 6: A B E           AC = AD = AE = BD = BE = 1/√8 ≈ .3536
    /// ```
    ///
    /// Neighbours (cos desc, then more buyers, then lower id):
    /// A: B .75, C .3536, D .3536, E .3536 · B: A .75, C .7071, D .3536, E .3536 ·
    /// C: B .7071, D .5, A .3536 · D: C .5, A .3536, B .3536 · E: A .3536, B .3536.
    fn six_customers() -> BasketColumns {
        basket(&[
            (1, &[A, B, C]),
            (2, &[A, B]),
            (3, &[B, C, D]),
            (4, &[A, D]),
            (5, &[E]),
            (6, &[A, B, E]),
        ])
    }

    fn everything_in_stock() -> CatalogueColumns {
        catalogue(&[
            (A, true),
            (B, true),
            (C, true),
            (D, true),
            (E, true),
            (F, true),
        ])
    }

    #[test]
    fn ranks_six_customers_as_computed_by_hand() {
        let result = recommend(&six_customers(), &everything_in_stock(), &config(3)).unwrap();
        assert_eq!(result.customers, vec![1, 2, 3, 4, 5, 6]);
        // 1 (A B C): D = .3536 + .3536 + .5 = 1.2071, E = .3536 + .3536 = .7071; then F.
        assert_eq!(list_of(&result, 1), [D, E, F]);
        // 2 (A B): C = .3536 + .7071 = 1.0607; D = E = .7071 (same terms), D has the lower id.
        assert_eq!(list_of(&result, 2), [C, D, E]);
        // 3 (B C D): A = .75 + .3536 + .3536 = 1.4571, E = .3536; then F.
        assert_eq!(list_of(&result, 3), [A, E, F]);
        // 4 (A D): B = .75 + .3536 = 1.1036, C = .3536 + .5 = .8536, E = .3536.
        assert_eq!(list_of(&result, 4), [B, C, E]);
        // 5 (E): A = B = .3536, same buyers, A has the lower id; then C from popular.
        assert_eq!(list_of(&result, 5), [A, B, C]);
        // 6 (A B E): C = 1.0607, D = .7071; then F.
        assert_eq!(list_of(&result, 6), [C, D, F]);
        // Buyers 4, 4, 2, 2, 2, 0: ties by lower id, the unsold F last.
        assert_eq!(result.popular, vec![A, B, C, D, E, F]);
    }

    #[test]
    fn related_lists_are_exact() {
        let result = recommend(&six_customers(), &everything_in_stock(), &config(3)).unwrap();
        let third = 1.0 / 8_f64.sqrt();
        let two_thirds = 2.0 / 8_f64.sqrt();
        assert_related(
            &result,
            &[
                (A, &[(B, 0.75), (C, third), (D, third), (E, third)]),
                (B, &[(A, 0.75), (C, two_thirds), (D, third), (E, third)]),
                (C, &[(B, two_thirds), (D, 0.5), (A, third)]),
                (D, &[(C, 0.5), (A, third), (B, third)]),
                (E, &[(A, third), (B, third)]),
            ],
        );
        // F has no buyers, so no entry.
        let two = RecommendConfig {
            related_per_product: 2,
            ..config(3)
        };
        let result = recommend(&six_customers(), &everything_in_stock(), &two).unwrap();
        let lengths: Vec<usize> = result.related.iter().map(|entry| entry.1.len()).collect();
        assert_eq!(lengths, vec![2, 2, 2, 2, 2]);
    }

    #[test]
    fn never_recommends_bought_products() {
        let result = recommend(&six_customers(), &everything_in_stock(), &config(10)).unwrap();
        let basket = six_customers();
        for (customer, list) in result.customers.iter().zip(&result.products) {
            for (&who, product) in basket.customer.iter().zip(&basket.product) {
                assert!(who != *customer || !list.contains(product));
            }
        }
        // Everything not bought, scored first then popular: 1 (A B C) gets D E F only.
        assert_eq!(list_of(&result, 1), [D, E, F]);
        assert_eq!(list_of(&result, 5), [A, B, C, D, F]);
    }

    #[test]
    fn out_of_stock_and_unlisted_products_are_never_recommended() {
        // C is out of stock; E is bought but missing from the catalogue.
        let stock = catalogue(&[(A, true), (B, true), (C, false), (D, true), (F, true)]);
        let result = recommend(&six_customers(), &stock, &config(3)).unwrap();
        assert_eq!(result.popular, vec![A, B, D, F]);
        // 1 (A B C): D = 1.2071 (C still counts as history); E is unlisted; then F.
        assert_eq!(list_of(&result, 1), [D, F]);
        // 2 (A B): D = .7071; then F from popular.
        assert_eq!(list_of(&result, 2), [D, F]);
        // 5 (E): A, B by score, then D from popular.
        assert_eq!(list_of(&result, 5), [A, B, D]);
        let third = 1.0 / 8_f64.sqrt();
        // Products with buyers keep their entry even when they cannot be recommended.
        assert_related(
            &result,
            &[
                (A, &[(B, 0.75), (D, third)]),
                (B, &[(A, 0.75), (D, third)]),
                (C, &[(B, 2.0 / 8_f64.sqrt()), (D, 0.5), (A, third)]),
                (D, &[(A, third), (B, third)]),
                (E, &[(A, third), (B, third)]),
            ],
        );
    }

    #[test]
    fn equal_scores_go_to_the_product_with_more_buyers() {
        // n: X 4, Y 1, Z 4; cos(X, Y) = 1/√4 and cos(X, Z) = 2/√16 are both exactly 1/2.
        const X: i64 = 1;
        const Y: i64 = 2;
        const Z: i64 = 3;
        let lines = basket(&[
            (1, &[X, Y]),
            (2, &[X, Z]),
            (3, &[X, Z]),
            (4, &[Z]),
            (5, &[Z]),
            (6, &[X]),
        ]);
        let stock = catalogue(&[(X, true), (Y, true), (Z, true)]);
        let result = recommend(&lines, &stock, &config(2)).unwrap();
        // 6 (X): Y = Z = 1/2, and Z has 4 buyers to Y's 1.
        assert_eq!(list_of(&result, 6), [Z, Y]);
        assert_eq!(result.popular, vec![X, Z, Y]);
        assert_related(
            &result,
            &[
                (X, &[(Z, 0.5), (Y, 0.5)]),
                (Y, &[(X, 0.5)]),
                (Z, &[(X, 0.5)]),
            ],
        );
    }

    #[test]
    fn popular_fills_short_lists_and_is_capped_at_one_hundred() {
        // 150 products, 5 out of stock: 1 bought by customers 1 and 2, 2 by customer 3,
        // the rest never.
        let lines = basket(&[(1, &[1]), (2, &[1]), (3, &[2])]);
        let stock = catalogue(&(1..=150).map(|id| (id, id != 5)).collect::<Vec<_>>());
        let result = recommend(&lines, &stock, &config(4)).unwrap();
        let mut expected = vec![1, 2];
        expected.extend((3..=150).filter(|&id| id != 5));
        expected.truncate(100);
        assert_eq!(result.popular, expected);
        // Nobody shares a product, so every list is popular minus the customer's own.
        assert_eq!(list_of(&result, 1), [2, 3, 4, 6]);
        assert_eq!(list_of(&result, 3), [1, 3, 4, 6]);
        assert_eq!(result.related, vec![(1, vec![]), (2, vec![])]);
    }

    #[test]
    fn history_keeps_the_products_with_most_lines() {
        // max_history 2. Lines per product: customer 1 A×3 B×2 C×1, so H(1) = {A, B};
        // customer 5 has one line of each of C, B, A, so H(5) = {A, B} by lower id.
        //   H: 1 {A B}, 2 {A C}, 3 {B C}, 4 {C D}, 5 {A B}
        //   n (all lines): A 3, B 3, C 5, D 1 → codes C A B D
        //   c (histories): AB 2, AC 1, BC 1, CD 1 (uncapped, AC and BC would be 2 and 3)
        //   cos: AB 2/√9, AC = BC = 1/√15, CD 1/√5
        let lines = basket(&[
            (1, &[A, A, A, B, B, C]),
            (2, &[A, C]),
            (3, &[B, C]),
            (4, &[C, D]),
            (5, &[C, B, A]),
        ]);
        let stock = catalogue(&[(A, true), (B, true), (C, true), (D, true)]);
        let capped = RecommendConfig {
            max_history: 2,
            ..config(3)
        };
        let result = recommend(&lines, &stock, &capped).unwrap();
        let ab = 2.0 / 3.0;
        let ac = 1.0 / 15_f64.sqrt();
        let cd = 1.0 / 5_f64.sqrt();
        assert_related(
            &result,
            &[
                (A, &[(B, ab), (C, ac)]),
                (B, &[(A, ab), (C, ac)]),
                (C, &[(D, cd), (A, ac), (B, ac)]),
                (D, &[(C, cd)]),
            ],
        );
        // 1 bought C beyond its history: still never recommended. Nothing scores; D fills.
        assert_eq!(list_of(&result, 1), [D]);
        // 2 (A C): B = 2/3 + 1/√15 ≈ .9249, D = 1/√5 ≈ .4472.
        assert_eq!(list_of(&result, 2), [B, D]);
        // 4 (C D): A = B = 1/√15, same buyers, A has the lower id.
        assert_eq!(list_of(&result, 4), [A, B]);
        assert_eq!(list_of(&result, 5), [D]);
    }

    #[test]
    fn repeated_lines_and_input_order_do_not_matter() {
        let mut shuffled = six_customers();
        shuffled.customer.reverse();
        shuffled.product.reverse();
        shuffled.customer.extend([6, 1, 3]);
        shuffled.product.extend([E, B, D]);
        let expected = recommend(&six_customers(), &everything_in_stock(), &config(3)).unwrap();
        let result = recommend(&shuffled, &everything_in_stock(), &config(3)).unwrap();
        assert_eq!(result, expected);
    }

    #[test]
    fn customer_ids_too_far_apart_to_pack_give_the_same_result() {
        let far = |customer: i64| match customer {
            1 => i64::MIN,
            6 => i64::MAX,
            other => other * 1_000_000_007,
        };
        let mut spread = six_customers();
        for customer in &mut spread.customer {
            *customer = far(*customer);
        }
        let expected = recommend(&six_customers(), &everything_in_stock(), &config(3)).unwrap();
        let result = recommend(&spread, &everything_in_stock(), &config(3)).unwrap();
        assert_eq!(result.customers, (1..=6).map(far).collect::<Vec<_>>());
        assert_eq!(result.products, expected.products);
        assert_eq!(result.popular, expected.popular);
        assert_eq!(result.related, expected.related);
        assert!(!fits_packed(i64::MIN, i64::MAX, 6) && fits_packed(-5, 1 << 40, 1 << 20));
    }

    #[test]
    fn product_ids_too_far_apart_for_a_table_give_the_same_result() {
        // Increasing, so the ids keep their order and every tie-break its outcome.
        let far = |product: i64| match product {
            A => i64::MIN,
            F => i64::MAX,
            other => other * 1_000_000_007,
        };
        let mut spread = six_customers();
        for product in &mut spread.product {
            *product = far(*product);
        }
        let mut stock = everything_in_stock();
        for product in &mut stock.product {
            *product = far(*product);
        }
        let expected = recommend(&six_customers(), &everything_in_stock(), &config(3)).unwrap();
        let result = recommend(&spread, &stock, &config(3)).unwrap();
        assert!(matches!(
            KnownProducts::new(&spread, &stock).index,
            ProductIndex::Sparse(_)
        ));
        let far_all = |ids: &[i64]| ids.iter().map(|&id| far(id)).collect::<Vec<_>>();
        assert_eq!(result.customers, expected.customers);
        assert_eq!(
            result.products,
            expected
                .products
                .iter()
                .map(|list| far_all(list))
                .collect::<Vec<_>>()
        );
        assert_eq!(result.popular, far_all(&expected.popular));
        let far_related: Vec<(i64, Vec<(i64, f64)>)> = expected
            .related
            .iter()
            .map(|(product, list)| {
                let list = list.iter().map(|&(other, cos)| (far(other), cos)).collect();
                (far(*product), list)
            })
            .collect();
        assert_eq!(result.related, far_related);
    }

    /// The method written out plainly (maps and loops), for random cross-checks.
    fn reference(
        basket: &BasketColumns,
        catalogue: &CatalogueColumns,
        config: &RecommendConfig,
    ) -> Recommendations {
        use std::collections::{BTreeMap, BTreeSet};
        let mut lines: BTreeMap<i64, BTreeMap<i64, u32>> = BTreeMap::new();
        for (&customer, &product) in basket.customer.iter().zip(&basket.product) {
            *lines
                .entry(customer)
                .or_default()
                .entry(product)
                .or_default() += 1;
        }
        let mut in_stock: BTreeMap<i64, bool> = BTreeMap::new();
        for (&product, &stocked) in catalogue.product.iter().zip(&catalogue.in_stock) {
            *in_stock.entry(product).or_default() |= stocked;
        }
        let stocked = |product: i64| in_stock.get(&product).copied().unwrap_or(false);
        let mut buyers: BTreeMap<i64, u64> = BTreeMap::new();
        for products in lines.values() {
            for &product in products.keys() {
                *buyers.entry(product).or_default() += 1;
            }
        }
        let n = |product: i64| buyers.get(&product).copied().unwrap_or(0);
        // Popularity order: more buyers, then lower id.
        let popularity = |a: &i64, b: &i64| n(*b).cmp(&n(*a)).then(a.cmp(b));
        let history: BTreeMap<i64, Vec<i64>> = lines
            .iter()
            .map(|(&customer, products)| {
                let mut kept: Vec<(i64, u32)> = products.iter().map(|(&p, &l)| (p, l)).collect();
                kept.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                kept.truncate(config.max_history);
                (customer, kept.into_iter().map(|entry| entry.0).collect())
            })
            .collect();
        let mut common: BTreeMap<(i64, i64), u64> = BTreeMap::new();
        for products in history.values() {
            for &i in products {
                for &j in products {
                    if i != j {
                        *common.entry((i, j)).or_default() += 1;
                    }
                }
            }
        }
        let mut similar: BTreeMap<i64, Vec<(i64, f64)>> = BTreeMap::new();
        for (&(i, j), &c) in &common {
            if stocked(j) {
                let cos = c as f64 / (n(i) as f64 * n(j) as f64).sqrt();
                similar.entry(i).or_default().push((j, cos));
            }
        }
        for list in similar.values_mut() {
            list.sort_by(|a, b| b.1.total_cmp(&a.1).then(popularity(&a.0, &b.0)));
        }
        let mut popular: Vec<i64> = in_stock.keys().copied().filter(|&p| stocked(p)).collect();
        popular.extend(buyers.keys().copied().filter(|p| !in_stock.contains_key(p)));
        popular.retain(|&p| stocked(p));
        popular.sort_by(popularity);
        popular.truncate(100);
        let mut products = Vec::new();
        for (customer, bought) in &lines {
            let mut score: BTreeMap<i64, i64> = BTreeMap::new();
            for i in &history[customer] {
                for &(j, cos) in similar
                    .get(i)
                    .map_or(&[][..], |l| &l[..config.neighbours.min(l.len())])
                {
                    *score.entry(j).or_default() += (cos * WEIGHT_SCALE).round() as i64;
                }
            }
            let mut ranked: Vec<(i64, i64)> = score
                .into_iter()
                .filter(|(j, _)| !bought.contains_key(j))
                .collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then(popularity(&a.0, &b.0)));
            let mut list: Vec<i64> = ranked
                .into_iter()
                .map(|e| e.0)
                .take(config.per_customer)
                .collect();
            let chosen: BTreeSet<i64> = list.iter().copied().collect();
            for &p in &popular {
                if list.len() < config.per_customer
                    && !bought.contains_key(&p)
                    && !chosen.contains(&p)
                {
                    list.push(p);
                }
            }
            products.push(list);
        }
        let related = buyers
            .keys()
            .map(|&i| {
                let list = similar.get(&i).map_or(Vec::new(), |l| {
                    l.iter().take(config.related_per_product).copied().collect()
                });
                (i, list)
            })
            .collect();
        Recommendations {
            customers: lines.keys().copied().collect(),
            products,
            popular,
            related,
        }
    }

    #[test]
    fn agrees_with_a_plain_implementation_on_random_baskets() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2003);
        for round in 0..12 {
            let products = rng.random_range(3..15_i64);
            let mut lines = BasketColumns::default();
            for _ in 0..rng.random_range(0..300) {
                lines.customer.push(rng.random_range(-20..40));
                // Skewed towards low ids, so some products are far more popular.
                let a = rng.random_range(0..products);
                lines.product.push(100 + rng.random_range(0..=a));
            }
            // Some catalogue products never bought, some bought ones unlisted.
            let mut listed = Vec::new();
            for k in 0..products + 2 {
                if rng.random_bool(0.9) {
                    listed.push((100 + k, rng.random_bool(0.8)));
                }
            }
            let stock = catalogue(&listed);
            let config = RecommendConfig {
                per_customer: rng.random_range(0..6),
                related_per_product: rng.random_range(0..6),
                max_history: rng.random_range(0..6),
                neighbours: rng.random_range(0..6),
            };
            let expected = reference(&lines, &stock, &config);
            let result = recommend(&lines, &stock, &config).unwrap();
            assert_eq!(result.customers, expected.customers, "round {round}");
            assert_eq!(
                result.products, expected.products,
                "round {round} {config:?}"
            );
            assert_eq!(result.popular, expected.popular, "round {round}");
            assert_eq!(result.related, expected.related, "round {round}");
        }
    }

    #[test]
    fn mismatched_columns_are_errors() {
        let lines = BasketColumns {
            customer: vec![1, 2],
            product: vec![A],
        };
        let error = recommend(&lines, &everything_in_stock(), &config(3)).unwrap_err();
        assert!(matches!(
            error,
            AnalyticsError::BasketLengthMismatch {
                customer: 2,
                product: 1
            }
        ));
        let stock = CatalogueColumns {
            product: vec![A, B],
            in_stock: vec![true],
        };
        let error = recommend(&six_customers(), &stock, &config(3)).unwrap_err();
        assert!(matches!(
            error,
            AnalyticsError::CatalogueLengthMismatch {
                product: 2,
                in_stock: 1
            }
        ));
    }

    #[test]
    fn empty_input_gives_empty_output() {
        let result = recommend(
            &BasketColumns::default(),
            &CatalogueColumns::default(),
            &RecommendConfig::default(),
        )
        .unwrap();
        assert_eq!(result, Recommendations::default());
        // No lines but a catalogue: only the popular list (by id, nobody bought anything).
        let result = recommend(
            &BasketColumns::default(),
            &catalogue(&[(B, true), (A, true), (C, false)]),
            &RecommendConfig::default(),
        )
        .unwrap();
        assert_eq!(result.popular, vec![A, B]);
        assert!(result.customers.is_empty() && result.related.is_empty());
    }

    #[test]
    fn pair_tally_dense_and_sparse_agree() {
        let product_count = 5;
        let pairs = [(0, 1), (1, 2), (3, 4), (0, 1), (1, 2), (0, 3), (1, 2)];
        let mut dense = PairTally::new(product_count);
        let mut sparse = PairTally {
            product_count,
            counts: PairCounts::Sparse(HashMap::new()),
        };
        assert!(matches!(dense.counts, PairCounts::Dense(_)));
        for (first, second) in pairs {
            dense.add(first, second);
            sparse.add(first, second);
        }
        let rows = |tally: PairTally| {
            let mut rows = Vec::new();
            tally.for_each(|i, j, common| rows.push((i, j, common)));
            rows.sort_unstable();
            rows
        };
        let expected = vec![(0, 1, 2), (0, 3, 1), (1, 2, 3), (3, 4, 1)];
        assert_eq!(rows(dense), expected);
        assert_eq!(rows(sparse), expected);
    }
}
