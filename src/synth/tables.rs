//! The word lists and weights behind synthetic citizens. Shares come from DOMAIN.md; the
//! province populations are the 2019 census (General Statistics Office), in thousands; the
//! age pyramid is a rounded sketch of the same census. Every string is NFC (tested).

use super::Ethnic;

/// Per province, in the order of [`crate::id::PROVINCES`]: census population in thousands (how
/// likely a birth was registered there) and the provincial capital, where town addresses are.
/// The five centrally-run cities have no capital entry: their urban districts are listed in
/// [`city_districts`].
pub(super) const PROVINCE_INFO: &[(u16, u32, &str)] = &[
    (1, 8054, ""),
    (2, 855, "Hà Giang"),
    (4, 530, "Cao Bằng"),
    (6, 314, "Bắc Kạn"),
    (8, 785, "Tuyên Quang"),
    (10, 731, "Lào Cai"),
    (11, 599, "Điện Biên Phủ"),
    (12, 461, "Lai Châu"),
    (14, 1249, "Sơn La"),
    (15, 822, "Yên Bái"),
    (17, 855, "Hòa Bình"),
    (19, 1287, "Thái Nguyên"),
    (20, 782, "Lạng Sơn"),
    (22, 1321, "Hạ Long"),
    (24, 1804, "Bắc Giang"),
    (25, 1464, "Việt Trì"),
    (26, 1152, "Vĩnh Yên"),
    (27, 1369, "Bắc Ninh"),
    (30, 1893, "Hải Dương"),
    (31, 2029, ""),
    (33, 1253, "Hưng Yên"),
    (34, 1861, "Thái Bình"),
    (35, 853, "Phủ Lý"),
    (36, 1781, "Nam Định"),
    (37, 983, "Ninh Bình"),
    (38, 3641, "Thanh Hóa"),
    (40, 3328, "Vinh"),
    (42, 1289, "Hà Tĩnh"),
    (44, 896, "Đồng Hới"),
    (45, 633, "Đông Hà"),
    (46, 1129, "Huế"),
    (48, 1135, ""),
    (49, 1496, "Tam Kỳ"),
    (51, 1232, "Quảng Ngãi"),
    (52, 1487, "Quy Nhơn"),
    (54, 873, "Tuy Hòa"),
    (56, 1232, "Nha Trang"),
    (58, 591, "Phan Rang – Tháp Chàm"),
    (60, 1231, "Phan Thiết"),
    (62, 541, "Kon Tum"),
    (64, 1514, "Pleiku"),
    (66, 1870, "Buôn Ma Thuột"),
    (67, 622, "Gia Nghĩa"),
    (68, 1297, "Đà Lạt"),
    (70, 995, "Đồng Xoài"),
    (72, 1170, "Tây Ninh"),
    (74, 2456, "Thủ Dầu Một"),
    (75, 3097, "Biên Hòa"),
    (77, 1149, "Vũng Tàu"),
    (79, 8993, ""),
    (80, 1689, "Tân An"),
    (82, 1765, "Mỹ Tho"),
    (83, 1289, "Bến Tre"),
    (84, 1010, "Trà Vinh"),
    (86, 1023, "Vĩnh Long"),
    (87, 1600, "Cao Lãnh"),
    (89, 1908, "Long Xuyên"),
    (91, 1724, "Rạch Giá"),
    (92, 1236, ""),
    (93, 734, "Vị Thanh"),
    (94, 1200, "Sóc Trăng"),
    (95, 907, "Bạc Liêu"),
    (96, 1194, "Cà Mau"),
];

/// Districts of the centrally-run cities: urban (Quận, or the city of Thủ Đức) and rural
/// (Huyện, without the word). Empty for the other provinces.
pub(super) fn city_districts(province: u16) -> (&'static [&'static str], &'static [&'static str]) {
    match province {
        1 => (
            &[
                "Quận Ba Đình",
                "Quận Hoàn Kiếm",
                "Quận Đống Đa",
                "Quận Cầu Giấy",
                "Quận Hai Bà Trưng",
                "Quận Thanh Xuân",
                "Quận Tây Hồ",
                "Quận Long Biên",
                "Quận Hoàng Mai",
                "Quận Hà Đông",
                "Quận Nam Từ Liêm",
                "Quận Bắc Từ Liêm",
            ],
            &[
                "Đông Anh",
                "Gia Lâm",
                "Thanh Trì",
                "Sóc Sơn",
                "Ba Vì",
                "Thạch Thất",
            ],
        ),
        31 => (
            &[
                "Quận Hồng Bàng",
                "Quận Lê Chân",
                "Quận Ngô Quyền",
                "Quận Kiến An",
                "Quận Hải An",
                "Quận Dương Kinh",
            ],
            &[
                "Thủy Nguyên",
                "An Dương",
                "Kiến Thụy",
                "Tiên Lãng",
                "Vĩnh Bảo",
            ],
        ),
        48 => (
            &[
                "Quận Hải Châu",
                "Quận Thanh Khê",
                "Quận Sơn Trà",
                "Quận Ngũ Hành Sơn",
                "Quận Liên Chiểu",
                "Quận Cẩm Lệ",
            ],
            &["Hòa Vang"],
        ),
        79 => (
            &[
                "Quận 1",
                "Quận 3",
                "Quận 4",
                "Quận 5",
                "Quận 6",
                "Quận 7",
                "Quận 8",
                "Quận 10",
                "Quận 11",
                "Quận 12",
                "Quận Bình Thạnh",
                "Quận Gò Vấp",
                "Quận Tân Bình",
                "Quận Tân Phú",
                "Quận Phú Nhuận",
                "Quận Bình Tân",
                "Thành phố Thủ Đức",
            ],
            &["Củ Chi", "Hóc Môn", "Bình Chánh", "Nhà Bè", "Cần Giờ"],
        ),
        92 => (
            &[
                "Quận Ninh Kiều",
                "Quận Bình Thủy",
                "Quận Cái Răng",
                "Quận Ô Môn",
                "Quận Thốt Nốt",
            ],
            &["Phong Điền", "Cờ Đỏ", "Vĩnh Thạnh", "Thới Lai"],
        ),
        _ => (&[], &[]),
    }
}

/// Where a province lies; it picks rural district names, the word for a hamlet, the regional
/// family-name variants and which ethnic minorities live there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Region {
    /// Red River delta and the northern midlands.
    North,
    /// The northern mountains (Hà Giang to Hòa Bình).
    NorthHighlands,
    /// Thanh Hóa to Bình Thuận.
    Central,
    /// Kon Tum, Gia Lai, Đắk Lắk, Đắk Nông, Lâm Đồng.
    CentralHighlands,
    /// The south-east and the Mekong delta.
    South,
}

pub(super) fn region(province: u16) -> Region {
    match province {
        2..=17 | 20 => Region::NorthHighlands,
        1 | 19 | 22..=37 => Region::North,
        38..=60 => Region::Central,
        62..=68 => Region::CentralHighlands,
        _ => Region::South,
    }
}

/// Rural districts (Huyện) outside the cities: a plausible set per region rather than the real
/// list per province.
pub(super) fn rural_districts(region: Region) -> &'static [&'static str] {
    match region {
        Region::North => &[
            "Đông Anh",
            "Gia Lâm",
            "Thanh Trì",
            "Yên Lạc",
            "Tiên Du",
            "Gia Lộc",
            "Kiến Thụy",
            "Vũ Thư",
            "Hải Hậu",
            "Kim Sơn",
            "Thanh Liêm",
            "Văn Lâm",
            "Lục Ngạn",
        ],
        Region::NorthHighlands => &[
            "Đồng Văn",
            "Bắc Hà",
            "Sa Pa",
            "Mường Tè",
            "Mai Sơn",
            "Văn Chấn",
            "Trùng Khánh",
            "Chợ Đồn",
            "Na Hang",
            "Tủa Chùa",
            "Mai Châu",
            "Bình Gia",
        ],
        Region::Central => &[
            "Thọ Xuân",
            "Quỳnh Lưu",
            "Can Lộc",
            "Lệ Thủy",
            "Hải Lăng",
            "Phú Vang",
            "Hòa Vang",
            "Điện Bàn",
            "Bình Sơn",
            "Tuy Phước",
            "Phú Hòa",
            "Ninh Hòa",
            "Ninh Phước",
            "Hàm Thuận Bắc",
        ],
        Region::CentralHighlands => &[
            "Đắk Hà",
            "Chư Sê",
            "Chư Păh",
            "Krông Pắc",
            "Cư M'gar",
            "Ea H'leo",
            "Krông Nô",
            "Đức Trọng",
            "Di Linh",
            "Bảo Lâm",
        ],
        Region::South => &[
            "Củ Chi",
            "Long Thành",
            "Bến Cát",
            "Châu Thành",
            "Cai Lậy",
            "Mỏ Cày Nam",
            "Cầu Ngang",
            "Trà Ôn",
            "Lai Vung",
            "Chợ Mới",
            "Giồng Riềng",
            "Phong Điền",
            "Mỹ Xuyên",
            "Hồng Dân",
            "Năm Căn",
        ],
    }
}

/// Names of wards (Phường) and communes (Xã); many recur across the country.
pub(super) const LOCALITIES: &[&str] = &[
    "An Phú",
    "Tân Phong",
    "Hòa Bình",
    "Quang Trung",
    "Trần Phú",
    "Lê Lợi",
    "Tân Lập",
    "Phú Hòa",
    "Bình An",
    "Đông Hòa",
    "Tân Định",
    "Hưng Phú",
    "Minh Khai",
    "Yên Hòa",
    "Nghĩa Tân",
    "Vĩnh Phúc",
    "Phước Long",
    "Hiệp Thành",
    "Long Bình",
    "Thạnh Mỹ",
    "Xuân La",
    "Thủy Xuân",
    "Hòa Khánh",
    "An Hải",
    "Tam Thuận",
    "Phú Thượng",
    "Đông Ngạc",
    "Kim Liên",
    "Hòa Cường",
    "Thạch Thang",
    "Bến Thành",
    "Đa Kao",
    "Mỹ An",
    "Hòa Thuận",
    "Tân An",
    "Thịnh Quang",
    "Nghĩa Đô",
    "Trung Hòa",
    "Phước Hải",
    "Cát Lái",
];

/// Street names, for town addresses.
pub(super) const STREETS: &[&str] = &[
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Nguyễn Huệ",
    "Lê Duẩn",
    "Hùng Vương",
    "Phan Đình Phùng",
    "Điện Biên Phủ",
    "Võ Thị Sáu",
    "Nguyễn Du",
    "Bà Triệu",
    "Ngô Quyền",
    "Trần Phú",
    "Lê Lai",
    "Nguyễn Văn Cừ",
    "Phạm Văn Đồng",
    "Nguyễn Thị Minh Khai",
];

/// Family names with their share in units of 1/100,000 (DOMAIN.md). The second spelling is the
/// southern variant of the same name ("Hoàng/Huỳnh", "Vũ/Võ"), used south of the line chosen
/// in [`super::southern_spelling`]; the pair shares the listed weight.
pub(super) const FAMILY_NAMES: &[((&str, &str), u32)] = &[
    (("Nguyễn", "Nguyễn"), 38_000),
    (("Trần", "Trần"), 11_000),
    (("Lê", "Lê"), 9_500),
    (("Phạm", "Phạm"), 7_000),
    (("Hoàng", "Huỳnh"), 5_000),
    (("Phan", "Phan"), 4_500),
    (("Vũ", "Võ"), 4_000),
    (("Đặng", "Đặng"), 2_000),
    (("Bùi", "Bùi"), 2_000),
    (("Đỗ", "Đỗ"), 1_400),
    (("Hồ", "Hồ"), 1_300),
    (("Ngô", "Ngô"), 1_300),
    (("Dương", "Dương"), 1_000),
    (("Lý", "Lý"), 500),
    // The remaining 11.5%, spread over common smaller names.
    (("Trương", "Trương"), 575),
    (("Đinh", "Đinh"), 575),
    (("Đoàn", "Đoàn"), 575),
    (("Lâm", "Lâm"), 575),
    (("Mai", "Mai"), 575),
    (("Trịnh", "Trịnh"), 575),
    (("Cao", "Cao"), 575),
    (("Lương", "Lương"), 575),
    (("Tạ", "Tạ"), 575),
    (("Hà", "Hà"), 575),
    (("Chu", "Chu"), 575),
    (("Tô", "Tô"), 575),
    (("Lưu", "Lưu"), 575),
    (("Thái", "Thái"), 575),
    (("Châu", "Châu"), 575),
    (("Quách", "Quách"), 575),
    (("Phùng", "Phùng"), 575),
    (("Đào", "Đào"), 575),
    (("Tăng", "Tăng"), 575),
    (("Kiều", "Kiều"), 575),
];

/// Middle names of men, per 10,000: "Văn" mostly, then the others DOMAIN.md lists.
pub(super) const MALE_MIDDLE: &[(&str, u32)] = &[
    ("Văn", 4_500),
    ("Đức", 900),
    ("Minh", 900),
    ("Quang", 800),
    ("Hữu", 700),
    ("Thanh", 500),
    ("Xuân", 400),
    ("Thế", 400),
    ("Tấn", 400),
    ("Hoàng", 400),
    ("Ngọc", 200),
];

/// Middle names of women, per 10,000: "Thị" mostly; a few southern women carry "Văn".
pub(super) const FEMALE_MIDDLE: &[(&str, u32)] = &[
    ("Thị", 6_000),
    ("Ngọc", 1_300),
    ("Thanh", 1_000),
    ("Xuân", 600),
    ("Minh", 500),
    ("Hoàng", 400),
    ("Văn", 200),
];

/// Given names of DOMAIN.md, split by the sex they are mostly given to (some are both).
pub(super) const MALE_GIVEN: &[&str] = &[
    "Anh", "Thanh", "Hùng", "Minh", "Huy", "Tiến", "An", "Nam", "Long", "Hải", "Tuấn", "Dũng",
    "Khánh", "Bảo", "Quân",
];
pub(super) const FEMALE_GIVEN: &[&str] = &[
    "Anh", "Linh", "Phương", "Thanh", "Nhi", "Trang", "Dung", "Thủy", "Ngọc", "Vy", "Thảo", "Thu",
    "An", "Hà", "Hương", "Lan", "Mai", "Hoa", "Khánh", "Minh",
];

/// Religions of the Kinh majority, per 10,000 (most people declare none).
pub(super) const KINH_RELIGIONS: &[(&str, u32)] = &[
    ("Không", 8_000),
    ("Phật giáo", 1_000),
    ("Công giáo", 700),
    ("Cao Đài", 150),
    ("Phật giáo Hòa Hảo", 100),
    ("Tin lành", 50),
];

/// How an ethnic minority's names are put together.
pub(super) enum Pattern {
    /// Ê Đê: a sex prefix, the given name, the family name last ("H'Hen Niê", "Y Moan Ênuôl").
    PrefixGivenFamily,
    /// Gia Rai: family name, then the given name with a sex prefix ("Ksor Y Đhăm",
    /// "Rơ Mah H'Bia").
    FamilyPrefixGiven,
    /// Ba Na: no family name, a sex prefix and the given name ("A Pớt", "Y Blương").
    PrefixGiven,
    /// Family, a middle word by sex, given ("Giàng A Páo", "Lò Thị Ún", "Thạch Sa Ra"); an
    /// empty middle word is left out.
    FamilyMiddleGiven {
        male: &'static [&'static str],
        female: &'static [&'static str],
    },
}

/// One ethnic group's naming and the religions its members declare.
pub(super) struct Group {
    pub ethnicity: &'static str,
    pub pattern: Pattern,
    /// Prefixes by sex, for the patterns that use them.
    pub male_prefix: &'static str,
    pub female_prefix: &'static str,
    pub families: &'static [&'static str],
    pub male_given: &'static [&'static str],
    pub female_given: &'static [&'static str],
    pub religions: &'static [(&'static str, u32)],
}

pub(super) fn group(ethnic: Ethnic) -> &'static Group {
    match ethnic {
        Ethnic::EDe => &Group {
            ethnicity: "Ê Đê",
            pattern: Pattern::PrefixGivenFamily,
            male_prefix: "Y ",
            female_prefix: "H'",
            families: &[
                "Niê",
                "Êban",
                "Mlô",
                "Byă",
                "Ayun",
                "Adrơng",
                "Ksơr",
                "Hđơk",
                "Ênuôl",
                "Kbuôr",
                "Niê Kdăm",
            ],
            male_given: &["Moan", "Blô", "Ngông", "Tru", "Bih", "Jut", "Đhăm", "Khoa"],
            female_given: &["Hen", "Bia", "Ly", "Nga", "Wơn", "Juin", "Blin", "Dyi"],
            religions: &[("Không", 5_500), ("Tin lành", 3_500), ("Công giáo", 1_000)],
        },
        Ethnic::GiaRai => &Group {
            ethnicity: "Gia Rai",
            pattern: Pattern::FamilyPrefixGiven,
            male_prefix: "Y ",
            female_prefix: "H'",
            families: &[
                "Ksor",
                "Rơ Mah",
                "Siu",
                "Rơ Châm",
                "Nay",
                "Kpă",
                "Rah Lan",
                "Puih",
                "Rơ Ô",
            ],
            male_given: &["Đhăm", "Phước", "Pơn", "Blũ", "Nhuin", "Dơk", "Hiăo"],
            female_given: &["Bia", "Nhi", "Bơ Khăp", "Lơn", "Yuh", "Ngai", "Ble"],
            religions: &[("Không", 5_500), ("Tin lành", 3_000), ("Công giáo", 1_500)],
        },
        Ethnic::BaNa => &Group {
            ethnicity: "Ba Na",
            pattern: Pattern::PrefixGiven,
            male_prefix: "A ",
            female_prefix: "Y ",
            families: &[],
            male_given: &["Pớt", "Sáu", "Nhai", "Hyum", "Blưh", "Djik", "Đen"],
            female_given: &["Blương", "Nhãi", "Djuh", "Hlưn", "Pher", "Nghiêm", "Ngọc"],
            religions: &[("Không", 5_000), ("Công giáo", 4_000), ("Tin lành", 1_000)],
        },
        Ethnic::Mong => &Group {
            ethnicity: "Mông",
            pattern: Pattern::FamilyMiddleGiven {
                male: &["A", "A", "Seo", "Mí"],
                female: &["Thị"],
            },
            male_prefix: "",
            female_prefix: "",
            families: &[
                "Giàng", "Vàng", "Sùng", "Thào", "Lý", "Mùa", "Hầu", "Lầu", "Sình", "Hạng",
            ],
            male_given: &["Páo", "Chứ", "Sử", "Dơ", "Lử", "Chống", "Pó", "Tủa", "Dình"],
            female_given: &["Mỷ", "Dua", "Sua", "Mai", "Dợ", "Xúa", "Pàng", "Say", "Chở"],
            religions: &[("Không", 8_000), ("Tin lành", 2_000)],
        },
        Ethnic::Thai => &Group {
            ethnicity: "Thái",
            pattern: Pattern::FamilyMiddleGiven {
                male: &["Văn"],
                female: &["Thị"],
            },
            male_prefix: "",
            female_prefix: "",
            families: &["Lò", "Cầm", "Quàng", "Lường", "Tòng", "Vi", "Lù"],
            male_given: &["Pọm", "Khăm", "Piếng", "Dọn", "Xương", "Ín", "Panh"],
            female_given: &["Ún", "Xiêng", "Ỏn", "Piêng", "Hom", "Éng", "Bun"],
            religions: &[("Không", 9_900), ("Tin lành", 100)],
        },
        Ethnic::Tay => &Group {
            ethnicity: "Tày",
            pattern: Pattern::FamilyMiddleGiven {
                male: &["Văn"],
                female: &["Thị"],
            },
            male_prefix: "",
            female_prefix: "",
            families: &["Nông", "Bế", "Ma", "Lục", "Lành", "Hà", "Triệu", "Hoàng"],
            male_given: &["Dền", "Slao", "Pấu", "Lình", "Khỏe", "Thàng"],
            female_given: &["Mây", "Dịu", "Nhoi", "Pẻng", "Tiên", "Lả"],
            religions: &[("Không", 9_800), ("Công giáo", 200)],
        },
        Ethnic::Khmer => &Group {
            ethnicity: "Khmer",
            pattern: Pattern::FamilyMiddleGiven {
                male: &["", "", "Văn"],
                female: &["Thị"],
            },
            male_prefix: "",
            female_prefix: "",
            families: &["Thạch", "Danh", "Sơn", "Kim", "Lâm", "Châu", "Trà"],
            male_given: &[
                "Sa Ra",
                "Sóc Kha",
                "Chanh Đa",
                "Rết",
                "Phol",
                "Som Bát",
                "Sa Rinh",
            ],
            female_given: &["Sa Rươl", "Sô Phi", "Sa Ri", "Sóc Pha", "Kim Huôl", "Sa Vy"],
            religions: &[("Phật giáo", 9_000), ("Không", 1_000)],
        },
        Ethnic::Cham => &Group {
            ethnicity: "Chăm",
            pattern: Pattern::FamilyMiddleGiven {
                male: &["Năng", "Văn"],
                female: &["Thị"],
            },
            male_prefix: "",
            female_prefix: "",
            families: &[
                "Đàng",
                "Quảng",
                "Thành",
                "Thông",
                "Báo",
                "Lưu",
                "Trượng",
                "Phú",
            ],
            male_given: &["Thọ", "Tuyên", "Lạc", "Sanh", "Đạt", "Mah", "Sa Li"],
            female_given: &["Hạnh", "Ni", "Sa", "Phiên", "Hoa", "Ka Ri"],
            religions: &[("Bà-la-môn", 4_500), ("Hồi giáo", 4_500), ("Không", 1_000)],
        },
    }
}

/// The minorities most likely among people registered in a province; elsewhere any group.
pub(super) fn minorities_of(province: u16) -> &'static [Ethnic] {
    use Ethnic::*;
    match province {
        66 | 67 => &[EDe, EDe, GiaRai],
        64 => &[GiaRai, GiaRai, BaNa],
        62 => &[BaNa, GiaRai],
        52 | 54 => &[BaNa, EDe],
        2 | 10 | 12 => &[Mong, Mong, Tay],
        11 | 14 => &[Thai, Mong],
        15 => &[Tay, Mong, Thai],
        4 | 6 | 8 | 19 | 20 | 22 | 24 => &[Tay],
        17 | 38 | 40 => &[Thai],
        58 | 60 => &[Cham],
        89 => &[Khmer, Cham],
        84 | 86 | 91 | 92 | 94 | 95 | 96 => &[Khmer],
        _ => &[EDe, GiaRai, BaNa, Mong, Thai, Tay, Khmer, Cham],
    }
}

/// Births surviving to 1 January 2026 per year of birth, by age band, in thousands: a rounded
/// sketch of Vietnam's 2019 census pyramid moved forward. Only the shape matters.
pub(super) const fn birth_year_weight(age: i32) -> u64 {
    match age {
        0..=4 => 1_350,
        5..=14 => 1_550,
        15..=24 => 1_400,
        25..=34 => 1_500,
        35..=44 => 1_550,
        45..=54 => 1_350,
        55..=64 => 1_100,
        65..=74 => 750,
        75..=84 => 320,
        85..=94 => 120,
        95..=100 => 20,
        _ => 0,
    }
}

/// Men per 1,000 people born in a year: the sex ratio at birth rose with ultrasound in the
/// 2000s, while women outlive men in the oldest cohorts.
pub(super) const fn male_per_mille(age: i32) -> u64 {
    match age {
        0..=20 => 525,
        21..=65 => 500,
        66..=80 => 440,
        _ => 380,
    }
}

/// Provinces that people born elsewhere most often move to, for current addresses, with
/// rough weights.
pub(super) const MIGRATION_TARGETS: &[(u16, u32)] =
    &[(79, 40), (1, 25), (74, 15), (75, 10), (48, 5), (92, 5)];
