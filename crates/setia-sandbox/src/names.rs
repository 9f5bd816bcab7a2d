//! Indonesian names for simulated customers.

pub const FIRST: &[&str] = &[
    "Budi", "Siti", "Agus", "Dewi", "Rina", "Andi", "Putri", "Hendra", "Wulan", "Eko", "Sri",
    "Joko", "Indah", "Rudi", "Ayu", "Bayu", "Fitri", "Dimas", "Lestari", "Yusuf", "Nur", "Arif",
    "Maya", "Rizky", "Intan", "Fajar", "Ratna", "Teguh", "Citra", "Wahyu", "Dian", "Galih",
    "Kartika", "Bambang", "Mega", "Hadi", "Nanda", "Surya", "Yuliana", "Ilham",
];

pub const LAST: &[&str] = &[
    "Santoso",
    "Rahma",
    "Wijaya",
    "Lestari",
    "Pratama",
    "Saputra",
    "Hidayat",
    "Kusuma",
    "Nugroho",
    "Setiawan",
    "Siregar",
    "Nasution",
    "Harahap",
    "Sihombing",
    "Simanjuntak",
    "Putra",
    "Wibowo",
    "Susanto",
    "Gunawan",
    "Halim",
    "Tanjung",
    "Purnomo",
    "Sulistyo",
    "Permana",
    "Hakim",
    "Utomo",
    "Firmansyah",
    "Maharani",
    "Anggraini",
    "Suryadi",
];

/// Family names the population never uses: payers nobody in the store is.
pub const RARE_LAST: &[&str] = &[
    "Tambunan",
    "Manurung",
    "Lubis",
    "Pohan",
    "Batubara",
    "Sembiring",
];
