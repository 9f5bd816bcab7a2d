//! Synthetic shopping baskets: the items of the purchases `setia sandbox generate` writes,
//! so that a recommender has something to learn.
//!
//! [`catalogue`] is a fixed catalogue of Indonesian online-shop products. [`write_items_csv`]
//! reads a purchase history (`customer_external_id,occurred_at,amount,reference`) and writes
//! 1 to 4 lines per purchase (`reference,sku,name,quantity,unit_price,category`), the format
//! `setia items import` reads. The model, all of it drawn from the seed:
//!
//! - **Category tastes.** Every customer (keyed by external id, so the same customer has the
//!   same tastes in any file drawn with the same seed) has 1 to 3 favourite categories, chosen
//!   by the categories' overall popularity, that carry 75–95 % of their lines between them (a
//!   sparse Dirichlet: exponential weights, normalised). The rest follows overall popularity.
//! - **Product popularity.** Within a category, products are ranked (a seed-dependent order)
//!   and drawn with Zipf weights 1/(rank+1)^1.1.
//! - **Companions.** Every product has 1 to 3 companion products, mostly of its own category
//!   and otherwise of a related one (gamis with khimar, kopi with snacks, popok with tisu
//!   basah…). When a product lands in a basket, one of its companions follows it with
//!   probability 0.45 (if the basket has room). This is item-to-item signal that category
//!   popularity alone does not carry.
//! - **Re-buys.** Consumables (skincare, cosmetics, snacks, coffee and tea, spices, baby care,
//!   household) that a customer bought before are bought again: each line is a re-buy with
//!   probability 0.3 once the customer has such a product.
//! - **Sizes.** 1, 2, 3 or 4 lines with probabilities 0.33, 0.30, 0.20, 0.17 (about 2.2 lines
//!   per purchase), never the same SKU twice in a purchase; quantity 1 (80 %), 2 (15 %) or 3.
//!
//! **The lines do not add up to the purchase's amount.** The history's amounts come from the
//! Gamma-Gamma spend model and the lines from the catalogue's prices; both are plausible, but
//! they are drawn independently. Unit prices are the catalogue's, in whole Rupiah.
//!
//! Re-buys remember the customer of the previous rows only: a customer's purchases are
//! expected together, as `setia sandbox generate` writes them. If the same customer comes
//! back after other customers' rows, their tastes are the same but their re-buy memory starts
//! again.

use std::io::{Read, Write};

/// A product of the sandbox store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueProduct {
    pub sku: String,
    pub name: String,
    pub category: String,
    /// Minor units (sen): whole Rupiah × 100.
    pub price_minor: i64,
}

/// What [`write_items_csv`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemsSummary {
    pub purchases: u64,
    pub lines: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BasketError {
    #[error("history header: {0}")]
    Header(String),
    #[error("history line {line}: {message}")]
    Row { line: u64, message: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// One product line of the catalogue: a name template (`{v}` is replaced by the variant, or
/// the variant is appended), a base price in whole Rupiah, and its variants with price
/// factors.
type Template = (&'static str, i64, &'static [(&'static str, f64)]);

struct CategoryDef {
    name: &'static str,
    prefix: &'static str,
    /// Relative share of all lines, before customers' tastes.
    popularity: f64,
    consumable: bool,
    /// Prefixes of the categories that companions may come from besides this one.
    related: &'static [&'static str],
    templates: &'static [Template],
}

const SAME: f64 = 1.0;

const CATEGORIES: &[CategoryDef] = &[
    CategoryDef {
        name: "Fashion Muslim",
        prefix: "FSH",
        popularity: 1.3,
        consumable: false,
        related: &["BTK", "KOS"],
        templates: &[
            ("Gamis {v}", 185_000, FABRICS),
            ("Tunik {v}", 125_000, FABRICS),
            ("Khimar Syar'i {v}", 89_000, FABRICS),
            ("Pashmina {v}", 55_000, FABRICS),
            ("Mukena Dewasa {v}", 175_000, FABRICS),
            ("Rok Plisket {v}", 95_000, FABRICS),
            ("Kulot {v}", 85_000, FABRICS),
            ("Bergo Instan {v}", 45_000, FABRICS),
            (
                "Baju Koko Pria {v}",
                150_000,
                &[
                    ("Katun Toyobo", SAME),
                    ("Bordir Lengan Panjang", 1.25),
                    ("Lengan Pendek", 0.85),
                ],
            ),
        ],
    },
    CategoryDef {
        name: "Batik",
        prefix: "BTK",
        popularity: 0.7,
        consumable: false,
        related: &["FSH"],
        templates: &[
            ("Kemeja Batik Pria Lengan Panjang {v}", 225_000, MOTIFS),
            ("Kemeja Batik Pria Lengan Pendek {v}", 165_000, MOTIFS),
            ("Blus Batik Wanita {v}", 150_000, MOTIFS),
            ("Dress Batik Midi {v}", 235_000, MOTIFS),
            ("Kain Batik Cap 2 m {v}", 180_000, MOTIFS),
            ("Outer Batik {v}", 175_000, MOTIFS),
            ("Sarung Batik {v}", 120_000, MOTIFS),
            ("Daster Batik {v}", 65_000, MOTIFS),
            (
                "Kain Batik Tulis {v}",
                550_000,
                &[("Lasem", SAME), ("Pekalongan", 0.9), ("Solo Sogan", 1.25)],
            ),
        ],
    },
    CategoryDef {
        name: "Skincare",
        prefix: "SKN",
        popularity: 1.3,
        consumable: true,
        related: &["KOS"],
        templates: &[
            ("Serum Niacinamide {v} 20 ml", 89_000, SKIN),
            ("Toner {v} 100 ml", 75_000, SKIN),
            ("Sunscreen SPF 50 {v} 50 ml", 65_000, SKIN),
            ("Facial Wash {v} 100 ml", 45_000, SKIN),
            ("Moisturizer Gel {v} 30 g", 59_000, SKIN),
            ("Sheet Mask {v} isi 5", 35_000, SKIN),
            ("Micellar Water {v} 200 ml", 42_000, SKIN),
            ("Body Lotion {v} 250 ml", 38_000, SKIN),
            ("Clay Mask {v} 100 g", 55_000, SKIN),
        ],
    },
    CategoryDef {
        name: "Kosmetik",
        prefix: "KOS",
        popularity: 1.1,
        consumable: true,
        related: &["SKN", "FSH"],
        templates: &[
            ("Lip Cream Matte {v}", 45_000, SHADES),
            ("Cushion SPF 30 {v}", 125_000, SHADES),
            ("Bedak Padat {v}", 55_000, SHADES),
            ("Foundation Cair 30 ml {v}", 99_000, SHADES),
            ("Concealer Stick {v}", 52_000, SHADES),
            ("Blush On {v}", 48_000, SHADES),
            ("Lip Tint {v}", 35_000, SHADES),
            ("Loose Powder {v}", 50_000, SHADES),
            (
                "Maskara Waterproof {v}",
                60_000,
                &[("Hitam", SAME), ("Cokelat", SAME), ("Volume Hitam", 1.15)],
            ),
        ],
    },
    CategoryDef {
        name: "Makanan Ringan",
        prefix: "SNK",
        popularity: 1.2,
        consumable: true,
        related: &["KPT", "BMB"],
        templates: &[
            ("Keripik Singkong {v} 200 g", 18_000, FLAVOURS),
            ("Basreng {v} 150 g", 22_000, FLAVOURS),
            ("Makaroni Bantat {v} 250 g", 20_000, FLAVOURS),
            ("Keripik Tempe {v} 200 g", 25_000, FLAVOURS),
            ("Kerupuk Kulit {v} 100 g", 28_000, FLAVOURS),
            ("Kacang Mete {v} 250 g", 65_000, FLAVOURS),
            ("Keripik Kentang {v} 150 g", 24_000, FLAVOURS),
            ("Usus Crispy {v} 100 g", 27_000, FLAVOURS),
            (
                "Pisang Sale {v}",
                30_000,
                &[
                    ("Basah 250 g", SAME),
                    ("Kering 250 g", SAME),
                    ("Cokelat 250 g", 1.2),
                ],
            ),
        ],
    },
    CategoryDef {
        name: "Kopi & Teh",
        prefix: "KPT",
        popularity: 0.8,
        consumable: true,
        related: &["SNK"],
        templates: &[
            ("Kopi Arabika {v} 250 g", 95_000, ORIGINS),
            (
                "Kopi Robusta {v} 250 g",
                60_000,
                &[("Lampung", SAME), ("Temanggung", 1.1), ("Dampit", 1.05)],
            ),
            ("Kopi Drip Bag {v} isi 10", 75_000, ORIGINS),
            ("Green Bean Arabika {v} 1 kg", 160_000, ORIGINS),
            (
                "Kopi Susu Gula Aren {v} 1 L",
                65_000,
                &[("Original", SAME), ("Less Sugar", SAME), ("Oat Milk", 1.25)],
            ),
            ("Teh {v} Tubruk 250 g", 25_000, TEAS),
            ("Teh Celup {v} isi 25", 12_000, TEAS),
            (
                "Matcha Bubuk {v} 100 g",
                85_000,
                &[("Ceremonial", 1.6), ("Culinary", SAME), ("Latte Mix", 0.8)],
            ),
            (
                "Kopi Luwak {v} 100 g",
                250_000,
                &[("Gayo", SAME), ("Kerinci", 0.9), ("Java Preanger", 1.1)],
            ),
        ],
    },
    CategoryDef {
        name: "Bumbu Dapur",
        prefix: "BMB",
        popularity: 0.8,
        consumable: true,
        related: &["RMT", "SNK"],
        templates: &[
            (
                "Sambal {v} Kemasan 150 g",
                25_000,
                &[
                    ("Bawang", SAME),
                    ("Cumi", 1.4),
                    ("Roa", 1.5),
                    ("Matah", 1.1),
                ],
            ),
            (
                "Bumbu {v} Instan 50 g",
                8_000,
                &[
                    ("Rendang", SAME),
                    ("Opor", SAME),
                    ("Soto Ayam", SAME),
                    ("Gulai", SAME),
                ],
            ),
            ("Kaldu Jamur {v}", 15_000, GRAMS),
            (
                "Gula Aren Cair {v}",
                22_000,
                &[("250 ml", SAME), ("500 ml", 1.8), ("1 L", 3.2)],
            ),
            ("Terasi Udang {v}", 12_000, GRAMS),
            ("Ketumbar Bubuk {v}", 7_000, GRAMS),
            ("Bawang Goreng {v}", 20_000, GRAMS),
            (
                "Kecap Manis {v}",
                18_000,
                &[
                    ("Botol 600 ml", SAME),
                    ("Refill 520 ml", 0.8),
                    ("Jeriken 1 L", 1.6),
                ],
            ),
        ],
    },
    CategoryDef {
        name: "Perlengkapan Bayi",
        prefix: "BYI",
        popularity: 0.9,
        consumable: true,
        related: &["MNK", "RMT"],
        templates: &[
            (
                "Popok Celana {v}",
                75_000,
                &[
                    ("Ukuran M isi 34", SAME),
                    ("Ukuran L isi 30", 1.05),
                    ("Ukuran XL isi 26", 1.1),
                ],
            ),
            (
                "Tisu Basah Bayi {v}",
                15_000,
                &[
                    ("isi 50", SAME),
                    ("isi 3 x 50", 2.6),
                    ("Tanpa Pewangi isi 80", 1.4),
                ],
            ),
            (
                "Minyak Telon {v}",
                22_000,
                &[("60 ml", SAME), ("100 ml", 1.5), ("150 ml", 2.1)],
            ),
            (
                "Sabun Bayi Cair {v}",
                28_000,
                &[("200 ml", SAME), ("400 ml", 1.8), ("Refill 450 ml", 1.6)],
            ),
            (
                "Botol Susu Anti Kolik {v}",
                65_000,
                &[
                    ("120 ml", SAME),
                    ("240 ml", 1.25),
                    ("Set Dot Cadangan", 0.6),
                ],
            ),
            (
                "Bedong Bayi Katun {v}",
                45_000,
                &[
                    ("Motif Bintang", SAME),
                    ("Motif Beruang", SAME),
                    ("Polos isi 3", 1.9),
                ],
            ),
            (
                "Baju Bayi Jumper {v}",
                55_000,
                &[
                    ("0-3 Bulan", SAME),
                    ("3-6 Bulan", SAME),
                    ("6-12 Bulan", 1.1),
                ],
            ),
            (
                "Bubur Bayi Organik {v} 120 g",
                25_000,
                &[
                    ("Beras Merah", SAME),
                    ("Kacang Hijau", SAME),
                    ("Pisang", SAME),
                ],
            ),
        ],
    },
    CategoryDef {
        name: "Elektronik Aksesoris",
        prefix: "ELK",
        popularity: 0.8,
        consumable: false,
        related: &["ATK"],
        templates: &[
            (
                "Kabel Data USB-C {v}",
                35_000,
                &[("1 m", SAME), ("2 m", 1.3), ("Braided 1 m", 1.5)],
            ),
            (
                "Charger Fast Charging {v}",
                95_000,
                &[("20 W", SAME), ("33 W", 1.4), ("65 W", 2.2)],
            ),
            (
                "Power Bank {v}",
                150_000,
                &[
                    ("10000 mAh", SAME),
                    ("20000 mAh", 1.6),
                    ("Slim 5000 mAh", 0.7),
                ],
            ),
            (
                "TWS Earbuds {v}",
                189_000,
                &[("Hitam", SAME), ("Putih", SAME), ("ANC", 1.9)],
            ),
            ("Casing HP Silikon {v}", 25_000, PHONES),
            ("Tempered Glass {v}", 20_000, PHONES),
            (
                "Holder HP Mobil {v}",
                45_000,
                &[("Magnetik", SAME), ("Jepit AC", 0.8), ("Dasbor", 1.1)],
            ),
            (
                "Mouse Wireless {v}",
                85_000,
                &[
                    ("Silent Click", SAME),
                    ("Ergonomis", 1.4),
                    ("Bluetooth", 1.2),
                ],
            ),
            (
                "Lampu LED Ring {v}",
                120_000,
                &[("10 inci", SAME), ("12 inci", 1.3), ("18 inci", 2.1)],
            ),
        ],
    },
    CategoryDef {
        name: "Alat Tulis",
        prefix: "ATK",
        popularity: 0.5,
        consumable: false,
        related: &["MNK", "ELK"],
        templates: &[
            (
                "Buku Tulis {v}",
                35_000,
                &[
                    ("38 Lembar isi 10", SAME),
                    ("58 Lembar isi 10", 1.3),
                    ("Bergaris A5 isi 5", 0.9),
                ],
            ),
            (
                "Pulpen Gel {v}",
                30_000,
                &[
                    ("Hitam isi 12", SAME),
                    ("Biru isi 12", SAME),
                    ("Warna isi 12", 1.3),
                ],
            ),
            (
                "Pensil 2B {v}",
                25_000,
                &[("isi 12", SAME), ("isi 24", 1.8), ("Mekanik 0.5 mm", 0.8)],
            ),
            (
                "Stabilo Highlighter {v}",
                45_000,
                &[
                    ("isi 5", SAME),
                    ("Pastel isi 6", 1.3),
                    ("Satuan Kuning", 0.25),
                ],
            ),
            (
                "Binder A5 {v}",
                55_000,
                &[("Kulit", SAME), ("Transparan", 0.6), ("Motif Bunga", 0.8)],
            ),
            (
                "Sticky Notes {v}",
                12_000,
                &[
                    ("Neon 3x3", SAME),
                    ("Pastel 3x3", SAME),
                    ("Penanda Halaman", 0.8),
                ],
            ),
            (
                "Penghapus {v}",
                6_000,
                &[
                    ("Putih isi 3", SAME),
                    ("Karakter isi 5", 2.5),
                    ("Pensil Warna", 1.2),
                ],
            ),
            ("Cat Air {v}", 48_000, COLOURS),
            ("Pensil Warna {v}", 40_000, COLOURS),
        ],
    },
    CategoryDef {
        name: "Rumah Tangga",
        prefix: "RMT",
        popularity: 0.9,
        consumable: true,
        related: &["BMB", "BYI"],
        templates: &[
            (
                "Sapu Lantai {v}",
                35_000,
                &[("Ijuk", SAME), ("Nilon", 1.1), ("Set Pengki", 1.6)],
            ),
            (
                "Lap Microfiber {v}",
                25_000,
                &[("isi 3", SAME), ("isi 6", 1.8), ("Dapur isi 4", 1.3)],
            ),
            (
                "Rak Piring {v}",
                145_000,
                &[
                    ("2 Susun", SAME),
                    ("3 Susun", 1.4),
                    ("Stainless Lipat", 1.2),
                ],
            ),
            (
                "Kotak Makan {v}",
                55_000,
                &[("3 Sekat", SAME), ("4 Sekat", 1.2), ("Kaca 800 ml", 1.5)],
            ),
            (
                "Sabun Cuci Piring {v}",
                18_000,
                &[
                    ("Jeruk Nipis 800 ml", SAME),
                    ("Refill 2 L", 1.8),
                    ("Lemon 400 ml", 0.6),
                ],
            ),
            (
                "Deterjen Cair {v}",
                32_000,
                &[
                    ("800 ml", SAME),
                    ("Refill 1600 ml", 1.8),
                    ("Sachet isi 10", 0.5),
                ],
            ),
            (
                "Pengharum Ruangan {v}",
                32_000,
                &[("Lavender", SAME), ("Jeruk", SAME), ("Melati", SAME)],
            ),
            (
                "Tempat Sampah Injak {v}",
                85_000,
                &[("12 L", SAME), ("20 L", 1.4), ("30 L", 1.8)],
            ),
            (
                "Wajan Anti Lengket {v}",
                175_000,
                &[("24 cm", SAME), ("28 cm", 1.25), ("Set 3 Ukuran", 2.6)],
            ),
        ],
    },
    CategoryDef {
        name: "Olahraga",
        prefix: "OLR",
        popularity: 0.5,
        consumable: false,
        related: &["FSH"],
        templates: &[
            (
                "Matras Yoga {v}",
                125_000,
                &[("6 mm", SAME), ("8 mm", 1.2), ("10 mm", 1.4)],
            ),
            (
                "Dumbel Vinyl {v}",
                70_000,
                &[
                    ("1 kg Sepasang", SAME),
                    ("2 kg Sepasang", 1.6),
                    ("3 kg Sepasang", 2.2),
                ],
            ),
            (
                "Tali Skipping {v}",
                30_000,
                &[("Standar", SAME), ("Digital", 1.8), ("Beban", 1.5)],
            ),
            (
                "Resistance Band {v}",
                65_000,
                &[("Set 5", SAME), ("Loop isi 3", 0.7), ("Tube Gagang", 1.2)],
            ),
            (
                "Botol Minum Olahraga {v}",
                55_000,
                &[("750 ml", SAME), ("1 L", 1.2), ("2 L Motivasi", 1.5)],
            ),
            (
                "Sepatu Lari {v}",
                399_000,
                &[("Pria", SAME), ("Wanita", SAME), ("Trail", 1.3)],
            ),
            (
                "Jersey Futsal {v}",
                120_000,
                &[("Merah", SAME), ("Biru", SAME), ("Hitam", SAME)],
            ),
            (
                "Raket Badminton {v}",
                350_000,
                &[
                    ("Carbon", SAME),
                    ("Aluminium", 0.4),
                    ("Carbon Sepasang", 1.8),
                ],
            ),
            (
                "Shuttlecock {v}",
                95_000,
                &[
                    ("Bulu Angsa isi 12", SAME),
                    ("Latihan isi 12", 0.6),
                    ("Plastik isi 6", 0.3),
                ],
            ),
        ],
    },
    CategoryDef {
        name: "Mainan Anak",
        prefix: "MNK",
        popularity: 0.6,
        consumable: false,
        related: &["BYI", "ATK"],
        templates: &[
            (
                "Puzzle Kayu {v}",
                35_000,
                &[("Huruf", SAME), ("Angka", SAME), ("Hewan", SAME)],
            ),
            (
                "Balok Susun {v}",
                85_000,
                &[
                    ("50 Keping", SAME),
                    ("100 Keping", 1.7),
                    ("Kayu Warna", 1.3),
                ],
            ),
            (
                "Mobil Remote Control {v}",
                225_000,
                &[("Off Road", SAME), ("Drift", 1.1), ("Mini", 0.5)],
            ),
            (
                "Boneka {v}",
                95_000,
                &[
                    ("Beruang 30 cm", SAME),
                    ("Kelinci 30 cm", SAME),
                    ("Beruang 60 cm", 2.0),
                ],
            ),
            ("Plastisin {v}", 28_000, COLOURS),
            (
                "Buku Mewarnai {v}",
                15_000,
                &[("Hewan", SAME), ("Kendaraan", SAME), ("Putri", SAME)],
            ),
            (
                "Mainan Masak-masakan {v}",
                110_000,
                &[
                    ("Set Dapur", SAME),
                    ("Set Kue", 0.8),
                    ("Set Sayur Potong", 0.6),
                ],
            ),
            (
                "Kereta Api Mainan {v}",
                165_000,
                &[("Rel 3 m", SAME), ("Rel 5 m", 1.4), ("Baterai Mini", 0.6)],
            ),
        ],
    },
];

const FABRICS: &[(&str, f64)] = &[
    ("Katun Rayon Motif Bunga", SAME),
    ("Ceruty Babydoll Polos", 1.15),
    ("Wolfis Premium", 0.9),
];
const MOTIFS: &[(&str, f64)] = &[
    ("Motif Parang", SAME),
    ("Motif Kawung", 1.05),
    ("Motif Mega Mendung", 1.15),
];
const SKIN: &[(&str, f64)] = &[
    ("Brightening", SAME),
    ("Acne Care", 1.05),
    ("Hydrating", 0.95),
];
const SHADES: &[(&str, f64)] = &[
    ("Shade Natural", SAME),
    ("Shade Ivory", SAME),
    ("Shade Rosy Beige", 1.05),
];
const FLAVOURS: &[(&str, f64)] = &[
    ("Balado", SAME),
    ("Original", 0.95),
    ("Pedas Daun Jeruk", 1.05),
];
const ORIGINS: &[(&str, f64)] = &[("Gayo", SAME), ("Toraja", 1.1), ("Kintamani", 1.05)];
const TEAS: &[(&str, f64)] = &[("Melati", SAME), ("Hijau", 1.1), ("Hitam", SAME)];
const GRAMS: &[(&str, f64)] = &[("100 g", SAME), ("250 g", 2.2), ("500 g", 4.0)];
const PHONES: &[(&str, f64)] = &[
    ("iPhone 13", SAME),
    ("Samsung A54", SAME),
    ("Redmi Note 12", SAME),
];
const COLOURS: &[(&str, f64)] = &[("12 Warna", SAME), ("24 Warna", 1.7), ("36 Warna", 2.3)];

/// Lowest and highest catalogue price, whole Rupiah.
const MIN_PRICE: i64 = 5_000;
const MAX_PRICE: i64 = 750_000;

fn product_name(template: &str, variant: &str) -> String {
    if template.contains("{v}") {
        template.replace("{v}", variant)
    } else {
        format!("{template} {variant}")
    }
}

/// Base × factor, to the nearest Rp 500, within Rp 5.000 – Rp 750.000.
fn product_price(base: i64, factor: f64) -> i64 {
    let rupiah = ((base as f64 * factor / 500.0).round() as i64 * 500).clamp(MIN_PRICE, MAX_PRICE);
    rupiah * 100
}

/// The sandbox store's fixed catalogue: 13 categories, 344 products, in category order; SKUs
/// are the category's prefix and a number (`FSH-001`), prices whole Rupiah from Rp 5.000 to
/// Rp 750.000. The same on every call.
pub fn catalogue() -> Vec<CatalogueProduct> {
    let mut products = Vec::new();
    for category in CATEGORIES {
        let mut number = 0;
        for &(template, base, variants) in category.templates {
            for &(variant, factor) in variants {
                number += 1;
                products.push(CatalogueProduct {
                    sku: format!("{}-{number:03}", category.prefix),
                    name: product_name(template, variant),
                    category: category.name.to_owned(),
                    price_minor: product_price(base, factor),
                });
            }
        }
    }
    products
}

/// SplitMix64: small, fast, and the same on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The customer's own stream: seed and external id, FNV-1a then mixed.
fn customer_seed(seed: u64, external_id: &[u8]) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for &byte in external_id {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01B3);
    }
    mix(hash ^ mix(seed ^ 0x5EED_BA5C_E700_0001))
}

/// Draws index i with probability weight_i / total from cumulative weights.
fn draw_cumulative(cumulative: &[f64], rng: &mut Rng) -> usize {
    let total = cumulative.last().copied().unwrap_or(0.0);
    let target = rng.unit() * total;
    cumulative
        .partition_point(|&c| c <= target)
        .min(cumulative.len() - 1)
}

fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .into_iter()
        .map(|w| {
            sum += w;
            sum
        })
        .collect()
}

const ZIPF_EXPONENT: f64 = 1.1;
const FAVOURITE_SHARE_MIN: f64 = 0.75;
const FAVOURITE_SHARE_SPREAD: f64 = 0.20;
const COMPANION_PROBABILITY: f64 = 0.45;
const SAME_CATEGORY_COMPANION: f64 = 0.7;
const REBUY_PROBABILITY: f64 = 0.3;
/// Cumulative probabilities of 1, 2, 3 and 4 lines.
const LINE_COUNTS: [f64; 4] = [0.33, 0.63, 0.83, 1.0];
/// Consumables a customer remembers for re-buys (the most recent ones).
const REBUY_MEMORY: usize = 16;

/// The catalogue with what the model needs, drawn once per seed.
struct Store {
    /// Per product: `,SKU,name,` and `,unit_price,category\n`, ready to write.
    middles: Vec<Vec<u8>>,
    tails: Vec<Vec<u8>>,
    consumable: Vec<bool>,
    /// Per category: its products, most popular first, and their cumulative Zipf weights.
    ranked: Vec<Vec<u16>>,
    ranked_cumulative: Vec<Vec<f64>>,
    category_cumulative: Vec<f64>,
    companions: Vec<Vec<u16>>,
}

impl Store {
    fn new(seed: u64) -> Store {
        let products = catalogue();
        let mut rng = Rng::new(mix(seed ^ 0xCA7A_1061_0E00_0000));
        let prefix_index = |prefix: &str| {
            CATEGORIES
                .iter()
                .position(|c| c.prefix == prefix)
                .expect("a related category is in the catalogue")
        };
        let mut category_of = Vec::with_capacity(products.len());
        let mut members: Vec<Vec<u16>> = vec![Vec::new(); CATEGORIES.len()];
        for (index, product) in products.iter().enumerate() {
            let category = CATEGORIES
                .iter()
                .position(|c| c.name == product.category)
                .expect("a catalogue category");
            category_of.push(category);
            members[category].push(index as u16);
        }
        // A seed-dependent popularity order within each category (Fisher-Yates).
        let ranked: Vec<Vec<u16>> = members
            .into_iter()
            .map(|mut list| {
                for i in (1..list.len()).rev() {
                    let j = rng.below(i + 1);
                    list.swap(i, j);
                }
                list
            })
            .collect();
        let ranked_cumulative: Vec<Vec<f64>> = ranked
            .iter()
            .map(|list| {
                cumulative(
                    (0..list.len()).map(|rank| 1.0 / ((rank + 1) as f64).powf(ZIPF_EXPONENT)),
                )
            })
            .collect();
        let category_cumulative = cumulative(CATEGORIES.iter().map(|c| c.popularity));

        let mut companions = Vec::with_capacity(products.len());
        for (index, &category) in category_of.iter().enumerate() {
            let wanted = 1 + rng.below(3);
            let mut chosen: Vec<u16> = Vec::with_capacity(wanted);
            let mut attempts = 0;
            while chosen.len() < wanted && attempts < 50 {
                attempts += 1;
                let related = CATEGORIES[category].related;
                let from = if related.is_empty() || rng.unit() < SAME_CATEGORY_COMPANION {
                    category
                } else {
                    prefix_index(related[rng.below(related.len())])
                };
                let candidate = ranked[from][draw_cumulative(&ranked_cumulative[from], &mut rng)];
                if usize::from(candidate) != index && !chosen.contains(&candidate) {
                    chosen.push(candidate);
                }
            }
            companions.push(chosen);
        }

        Store {
            middles: products
                .iter()
                .map(|p| format!(",{},{},", p.sku, p.name).into_bytes())
                .collect(),
            tails: products
                .iter()
                .map(|p| {
                    format!(
                        ",{}.{:02},{}\n",
                        p.price_minor / 100,
                        p.price_minor % 100,
                        p.category
                    )
                    .into_bytes()
                })
                .collect(),
            consumable: category_of
                .iter()
                .map(|&c| CATEGORIES[c].consumable)
                .collect(),
            ranked,
            ranked_cumulative,
            category_cumulative,
            companions,
        }
    }

    fn draw_in_category(&self, category: usize, rng: &mut Rng) -> u16 {
        self.ranked[category][draw_cumulative(&self.ranked_cumulative[category], rng)]
    }
}

/// One customer's tastes and re-buy memory.
struct Customer {
    rng: Rng,
    favourites: [usize; 3],
    /// Cumulative weights over `favourites` (unused slots repeat the total).
    favourite_cumulative: [f64; 3],
    favourite_count: usize,
    favourite_share: f64,
    bought: Vec<u16>,
}

impl Customer {
    fn new(store: &Store, seed: u64, external_id: &[u8]) -> Customer {
        let mut rng = Rng::new(customer_seed(seed, external_id));
        let roll = rng.unit();
        let favourite_count = if roll < 0.35 {
            1
        } else if roll < 0.75 {
            2
        } else {
            3
        };
        let mut favourites = [0; 3];
        let mut weights = [0.0; 3];
        let mut chosen = 0;
        while chosen < favourite_count {
            let category = draw_cumulative(&store.category_cumulative, &mut rng);
            if favourites[..chosen].contains(&category) {
                continue;
            }
            favourites[chosen] = category;
            // Exponential weights: a Dirichlet(1, …) split of the favourite share.
            weights[chosen] = -(1.0 - rng.unit()).ln();
            chosen += 1;
        }
        let mut favourite_cumulative = [0.0; 3];
        let mut sum = 0.0;
        for (slot, weight) in weights.iter().enumerate() {
            if slot < favourite_count {
                sum += weight;
            }
            favourite_cumulative[slot] = sum;
        }
        let favourite_share = FAVOURITE_SHARE_MIN + FAVOURITE_SHARE_SPREAD * rng.unit();
        Customer {
            rng,
            favourites,
            favourite_cumulative,
            favourite_count,
            favourite_share,
            bought: Vec::new(),
        }
    }

    fn category(&mut self, store: &Store) -> usize {
        if self.rng.unit() < self.favourite_share {
            let slot = draw_cumulative(
                &self.favourite_cumulative[..self.favourite_count],
                &mut self.rng,
            );
            self.favourites[slot]
        } else {
            draw_cumulative(&store.category_cumulative, &mut self.rng)
        }
    }

    /// The products of one purchase, distinct, 1 to 4 of them.
    fn basket(&mut self, store: &Store, out: &mut Vec<(u16, u8)>) {
        out.clear();
        let roll = self.rng.unit();
        let wanted = LINE_COUNTS.iter().position(|&c| roll < c).unwrap_or(3) + 1;
        let mut companion: Option<u16> = None;
        let mut attempts = 0;
        while out.len() < wanted && attempts < 16 {
            attempts += 1;
            let product = if let Some(next) = companion.take() {
                next
            } else if !self.bought.is_empty() && self.rng.unit() < REBUY_PROBABILITY {
                self.bought[self.rng.below(self.bought.len())]
            } else {
                let category = self.category(store);
                store.draw_in_category(category, &mut self.rng)
            };
            if out.iter().any(|&(p, _)| p == product) {
                continue;
            }
            let roll = self.rng.unit();
            let quantity = if roll < 0.80 {
                1
            } else if roll < 0.95 {
                2
            } else {
                3
            };
            out.push((product, quantity));
            let options = &store.companions[usize::from(product)];
            if !options.is_empty() && self.rng.unit() < COMPANION_PROBABILITY {
                companion = Some(options[self.rng.below(options.len())]);
            }
        }
        for &(product, _) in out.iter() {
            if store.consumable[usize::from(product)] && !self.bought.contains(&product) {
                if self.bought.len() == REBUY_MEMORY {
                    self.bought.remove(0);
                }
                self.bought.push(product);
            }
        }
    }
}

/// A CSV field, quoted when it needs to be.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    if field
        .iter()
        .any(|&b| b == b',' || b == b'"' || b == b'\n' || b == b'\r')
    {
        out.push(b'"');
        for &b in field {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field);
    }
}

fn is_amount(text: &[u8]) -> bool {
    let (whole, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &b""[..]),
    };
    !whole.is_empty() && fraction.len() <= 2 && whole.iter().chain(fraction).all(u8::is_ascii_digit)
}

fn csv_error(error: csv::Error, line: u64) -> BasketError {
    let line = error.position().map(|p| p.line()).unwrap_or(line);
    match error.into_kind() {
        csv::ErrorKind::Io(io) => BasketError::Io(io),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => BasketError::Row {
            line,
            message: format!("{len} fields where the header has {expected_len}"),
        },
        csv::ErrorKind::Utf8 { err, .. } => BasketError::Row {
            line,
            message: format!("not UTF-8: {err}"),
        },
        other => BasketError::Row {
            line,
            message: format!("{other:?}"),
        },
    }
}

/// Reads a purchase history (`customer_external_id,occurred_at,amount,reference`, header
/// first, columns in any order, others ignored) and writes the items of its purchases,
/// `reference,sku,name,quantity,unit_price,category` with a header: 1 to 4 lines per
/// purchase, drawn from [`catalogue`] by the model of the module documentation. The same
/// history and seed always give the same bytes. Both sides are buffered here.
pub fn write_items_csv<R: Read, W: Write>(
    history: R,
    out: W,
    seed: u64,
) -> Result<ItemsSummary, BasketError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .buffer_capacity(1 << 20)
        .from_reader(history);
    let header = reader.byte_headers().map_err(|e| match csv_error(e, 1) {
        BasketError::Row { message, .. } => BasketError::Header(message),
        other => other,
    })?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| {
                BasketError::Header(format!(
                    "no {name} column (expected customer_external_id,occurred_at,amount,reference)"
                ))
            })
    };
    let customer_at = column("customer_external_id")?;
    let time_at = column("occurred_at")?;
    let amount_at = column("amount")?;
    let reference_at = column("reference")?;

    let store = Store::new(seed);
    let mut writer = std::io::BufWriter::with_capacity(1 << 20, out);
    writer.write_all(b"reference,sku,name,quantity,unit_price,category\n")?;
    let mut summary = ItemsSummary::default();
    let mut record = csv::ByteRecord::new();
    let mut current_id: Vec<u8> = Vec::new();
    let mut customer: Option<Customer> = None;
    let mut basket = Vec::with_capacity(4);
    let mut reference = Vec::with_capacity(64);
    let mut text = Vec::with_capacity(512);
    let mut line: u64 = 1;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(csv_error(error, line + 1)),
        }
        line = record.position().map(|p| p.line()).unwrap_or(line + 1);
        let bad = |message: String| BasketError::Row { line, message };
        let id = record.get(customer_at).unwrap_or_default();
        if id.is_empty() {
            return Err(bad("customer_external_id is empty".into()));
        }
        if record.get(time_at).unwrap_or_default().is_empty() {
            return Err(bad("occurred_at is empty".into()));
        }
        let amount = record.get(amount_at).unwrap_or_default();
        if !is_amount(amount) {
            return Err(bad(format!(
                "amount {:?} is not a decimal with at most 2 decimals",
                String::from_utf8_lossy(amount)
            )));
        }
        let reference_field = record.get(reference_at).unwrap_or_default();
        if reference_field.is_empty() {
            return Err(bad("reference is empty".into()));
        }
        if customer.is_none() || current_id != id {
            current_id.clear();
            current_id.extend_from_slice(id);
            customer = Some(Customer::new(&store, seed, id));
        }
        let buyer = customer.as_mut().expect("a customer");
        buyer.basket(&store, &mut basket);
        reference.clear();
        push_field(&mut reference, reference_field);
        text.clear();
        for &(product, quantity) in &basket {
            text.extend_from_slice(&reference);
            text.extend_from_slice(&store.middles[usize::from(product)]);
            text.push(b'0' + quantity);
            text.extend_from_slice(&store.tails[usize::from(product)]);
        }
        writer.write_all(&text)?;
        summary.purchases += 1;
        summary.lines += basket.len() as u64;
    }
    writer.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// A small history in `sandbox generate`'s format: `customers` customers with 1 to 12
    /// purchases each.
    fn history(customers: usize) -> String {
        let mut text = String::from("customer_external_id,occurred_at,amount,reference\n");
        let mut row = 0;
        for customer in 1..=customers {
            for purchase in 0..(1 + (customer * 7) % 12) {
                row += 1;
                text.push_str(&format!(
                    "C{customer:04},2025-{:02}-{:02} 10:{:02}:00,{}.50,sim-9-{row}\n",
                    1 + purchase % 12,
                    1 + customer % 28,
                    purchase % 60,
                    50_000 + 1_000 * purchase
                ));
            }
        }
        text
    }

    fn items(history: &str, seed: u64) -> (String, ItemsSummary) {
        let mut out = Vec::new();
        let summary = write_items_csv(history.as_bytes(), &mut out, seed).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn the_catalogue_is_fixed_unique_and_plausible() {
        let products = catalogue();
        assert_eq!(products, catalogue());
        assert!(
            (250..=400).contains(&products.len()),
            "{} products",
            products.len()
        );
        let skus: HashSet<&str> = products.iter().map(|p| p.sku.as_str()).collect();
        let names: HashSet<&str> = products.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(skus.len(), products.len(), "SKUs are unique");
        assert_eq!(names.len(), products.len(), "names are unique");
        let categories: HashSet<&str> = products.iter().map(|p| p.category.as_str()).collect();
        assert!((10..=14).contains(&categories.len()));
        for p in &products {
            assert!(
                (500_000..=75_000_000).contains(&p.price_minor) && p.price_minor % 100 == 0,
                "{p:?}"
            );
            assert!(
                !p.name.contains(['{', '}', ',', '"']) && !p.name.contains("  "),
                "{p:?}"
            );
            assert!(p.sku.len() == 7 && p.sku.as_bytes()[3] == b'-', "{}", p.sku);
        }
        assert!(names.contains("Gamis Katun Rayon Motif Bunga"));
        assert!(names.contains("Kopi Arabika Gayo 250 g"));
        assert!(names.contains("Sambal Bawang Kemasan 150 g"));
        assert_eq!(products[0].sku, "FSH-001");
    }

    #[test]
    fn same_seed_same_items_and_another_seed_others() {
        let history = history(120);
        let (first, summary) = items(&history, 3);
        let (second, again) = items(&history, 3);
        assert_eq!(first, second);
        assert_eq!(summary, again);
        let (third, _) = items(&history, 4);
        assert_ne!(first, third);
    }

    #[test]
    fn every_purchase_gets_one_to_four_lines_of_catalogue_products() {
        let history = history(300);
        let (text, summary) = items(&history, 11);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("reference,sku,name,quantity,unit_price,category")
        );
        let products: HashMap<String, CatalogueProduct> = catalogue()
            .into_iter()
            .map(|p| (p.sku.clone(), p))
            .collect();
        let mut per_reference: HashMap<String, Vec<String>> = HashMap::new();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for row in reader.records() {
            let row = row.unwrap();
            assert_eq!(row.len(), 6);
            let product = products.get(&row[1]).expect("a catalogue SKU");
            assert_eq!(&row[2], product.name);
            let quantity: u32 = row[3].parse().unwrap();
            assert!((1..=3).contains(&quantity));
            assert_eq!(
                row[4].to_string(),
                format!("{}.00", product.price_minor / 100)
            );
            assert_eq!(&row[5], product.category);
            per_reference
                .entry(row[0].to_string())
                .or_default()
                .push(row[1].to_string());
        }
        let references: Vec<&str> = history
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        assert_eq!(summary.purchases, references.len() as u64);
        assert_eq!(per_reference.len(), references.len());
        let mut total = 0;
        for reference in references {
            let skus = &per_reference[reference];
            assert!((1..=4).contains(&skus.len()), "{reference}: {skus:?}");
            let distinct: HashSet<&String> = skus.iter().collect();
            assert_eq!(distinct.len(), skus.len(), "no SKU twice in a purchase");
            total += skus.len();
        }
        assert_eq!(summary.lines, total as u64);
        let mean = total as f64 / summary.purchases as f64;
        assert!((1.9..=2.5).contains(&mean), "{mean} lines per purchase");
    }

    #[test]
    fn a_customers_lines_concentrate_on_few_categories() {
        let history = history(400);
        let (text, _) = items(&history, 5);
        let customer_of: HashMap<&str, &str> = history
            .lines()
            .skip(1)
            .map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                (fields[3], fields[0])
            })
            .collect();
        let mut per_customer: HashMap<&str, HashMap<String, u32>> = HashMap::new();
        let mut overall: HashMap<String, u32> = HashMap::new();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut lines_of = Vec::new();
        for row in reader.records() {
            let row = row.unwrap();
            lines_of.push((row[0].to_string(), row[5].to_string()));
        }
        for (reference, category) in &lines_of {
            *per_customer
                .entry(customer_of[reference.as_str()])
                .or_default()
                .entry(category.clone())
                .or_default() += 1;
            *overall.entry(category.clone()).or_default() += 1;
        }
        // Share of a customer's lines in their 3 biggest categories, for customers with at
        // least 10 lines, against the same share if lines followed overall popularity.
        let mut shares = Vec::new();
        for counts in per_customer.values() {
            let total: u32 = counts.values().sum();
            if total < 10 {
                continue;
            }
            let mut sorted: Vec<u32> = counts.values().copied().collect();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            shares.push(f64::from(sorted.iter().take(3).sum::<u32>()) / f64::from(total));
        }
        assert!(shares.len() > 100, "{} customers", shares.len());
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        let all: u32 = overall.values().sum();
        let mut sorted: Vec<u32> = overall.values().copied().collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let popular_three = f64::from(sorted.iter().take(3).sum::<u32>()) / f64::from(all);
        assert!(
            mean > 0.8 && mean > popular_three + 0.3,
            "top-3 share per customer {mean:.3}, overall {popular_three:.3}"
        );
    }

    #[test]
    fn companions_account_for_many_of_the_pairs_bought_together() {
        let seed = 8;
        let store = Store::new(seed);
        let index: HashMap<String, u16> = catalogue()
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p.sku, i as u16))
            .collect();
        let history = history(400);
        let (text, _) = items(&history, seed);
        let mut baskets: HashMap<String, Vec<u16>> = HashMap::new();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        for row in reader.records() {
            let row = row.unwrap();
            baskets
                .entry(row[0].to_string())
                .or_default()
                .push(index[&row[1]]);
        }
        let (mut pairs, mut companion_pairs) = (0, 0);
        for products in baskets.values() {
            for (i, &a) in products.iter().enumerate() {
                for &b in &products[i + 1..] {
                    pairs += 1;
                    let linked = store.companions[usize::from(a)].contains(&b)
                        || store.companions[usize::from(b)].contains(&a);
                    companion_pairs += usize::from(linked);
                }
            }
        }
        // About 2 companions each among 344 products: by chance, a few percent of the pairs.
        let share = companion_pairs as f64 / pairs as f64;
        assert!(
            pairs > 500 && share > 0.25,
            "{companion_pairs} of {pairs} pairs"
        );
        assert!(store.companions.iter().all(|c| (1..=3).contains(&c.len())));
    }

    #[test]
    fn malformed_rows_are_errors_naming_their_line() {
        let good = "customer_external_id,occurred_at,amount,reference\n\
                    C1,2025-01-01 10:00:00,100.00,r1\n";
        let cases = [
            (
                format!("{good}C1,2025-01-02 10:00:00,lots,r2\n"),
                3,
                "amount",
            ),
            (format!("{good}C1,2025-01-02 10:00:00,1.00\n"), 3, "fields"),
            (
                format!("{good}C2,2025-01-02 10:00:00,1.00,r3\n,2025-01-03 10:00:00,1.00,r4\n"),
                4,
                "customer_external_id",
            ),
            (
                format!("{good}C1,2025-01-02 10:00:00,1.00,\n"),
                3,
                "reference",
            ),
        ];
        for (text, line, word) in cases {
            let error = write_items_csv(text.as_bytes(), Vec::new(), 1).unwrap_err();
            match &error {
                BasketError::Row { line: at, message } => {
                    assert_eq!(*at, line, "{error}");
                    assert!(error.to_string().contains(&format!("line {line}")));
                    assert!(message.contains(word), "{error}");
                }
                other => panic!("{other:?}"),
            }
        }
        let error =
            write_items_csv(&b"customer,when,amount\nC1,x,1\n"[..], Vec::new(), 1).unwrap_err();
        assert!(matches!(error, BasketError::Header(_)), "{error:?}");
        let summary = write_items_csv(good.as_bytes(), Vec::new(), 1).unwrap();
        assert_eq!(summary.purchases, 1);
    }

    #[test]
    fn references_with_commas_are_quoted() {
        let text = "customer_external_id,occurred_at,amount,reference\n\
                    C1,2025-01-01 10:00:00,100.00,\"INV,7\"\n";
        let (out, summary) = items(text, 2);
        let mut reader = csv::Reader::from_reader(out.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len() as u64, summary.lines);
        assert!(rows.iter().all(|r| &r[0] == "INV,7"));
    }
}
