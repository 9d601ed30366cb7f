//! Tables the population generator samples from: province weights, Vietnamese family,
//! middle and given names, and a few strings for addresses, employers and hospitals.
//! Weights are approximate (the 2019 census populations in thousands; name frequencies
//! from published surname surveys): only their shape matters.

/// `(province code, weight)`: every code of [`crate::record::PROVINCE_CODES`] with roughly
/// its 2019 census population in thousands.
pub(super) const PROVINCE_WEIGHTS: [(u16, u32); 63] = [
    (1, 8054),
    (2, 854),
    (4, 530),
    (6, 314),
    (8, 785),
    (10, 731),
    (11, 599),
    (12, 460),
    (14, 1249),
    (15, 822),
    (17, 855),
    (19, 1287),
    (20, 782),
    (22, 1321),
    (24, 1804),
    (25, 1464),
    (26, 1152),
    (27, 1368),
    (30, 1893),
    (31, 2028),
    (33, 1253),
    (34, 1861),
    (35, 853),
    (36, 1781),
    (37, 983),
    (38, 3641),
    (40, 3328),
    (42, 1289),
    (44, 896),
    (45, 633),
    (46, 1129),
    (48, 1135),
    (49, 1496),
    (51, 1232),
    (52, 1487),
    (54, 873),
    (56, 1232),
    (58, 591),
    (60, 1231),
    (62, 541),
    (64, 1514),
    (66, 1870),
    (67, 623),
    (68, 1297),
    (70, 995),
    (72, 1170),
    (74, 2427),
    (75, 3098),
    (77, 1149),
    (79, 8993),
    (80, 1689),
    (82, 1765),
    (83, 1289),
    (84, 1010),
    (86, 1023),
    (87, 1600),
    (89, 1909),
    (91, 1724),
    (92, 1236),
    (93, 734),
    (94, 1200),
    (95, 908),
    (96, 1194),
];

/// `(family name, weight in tenths of a percent)`.
pub(super) const FAMILY_NAMES: [(&str, u32); 16] = [
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 30),
    ("Huỳnh", 21),
    ("Phan", 45),
    ("Vũ", 20),
    ("Võ", 19),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
];

pub(super) const MIDDLE_MALE: [&str; 8] = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thành", "Công", "Gia"];
pub(super) const MIDDLE_FEMALE: [&str; 8] = ["Thị", "Ngọc", "Thu", "Thanh", "Mai", "Kim", "Phương", "Bảo"];

pub(super) const GIVEN_MALE: [&str; 24] = [
    "An", "Bình", "Cường", "Dũng", "Duy", "Hải", "Hiếu", "Hoàng", "Hùng", "Huy", "Khang", "Khoa", "Long", "Minh",
    "Nam", "Nghĩa", "Phong", "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Trung", "Tuấn",
];
pub(super) const GIVEN_FEMALE: [&str; 24] = [
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh", "Loan", "Mai", "My", "Nga",
    "Ngân", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo", "Trang", "Vy", "Yến",
];

pub(super) const STREETS: [&str; 12] = [
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Huệ",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Hùng Vương",
    "Điện Biên Phủ",
    "Phan Đình Phùng",
    "Nguyễn Trãi",
    "Lê Duẩn",
    "Bà Triệu",
];

pub(super) const EMPLOYERS: [&str; 8] = [
    "Công ty TNHH Minh Phát",
    "Công ty CP Sao Việt",
    "Hộ kinh doanh",
    "Trường THPT",
    "Bệnh viện Đa khoa",
    "Công ty CP Thép",
    "UBND phường",
    "Công ty TNHH Điện tử",
];

pub(super) const HOSPITALS: [&str; 6] = [
    "Bệnh viện Đa khoa tỉnh",
    "Trung tâm Y tế huyện",
    "Bệnh viện Chợ Rẫy",
    "Bệnh viện Bạch Mai",
    "Trạm Y tế xã",
    "Bệnh viện Trung ương Huế",
];

pub(super) const MOTORBIKES: [&str; 6] =
    ["Honda Wave", "Honda Vision", "Yamaha Sirius", "Honda Air Blade", "Yamaha Exciter", "VinFast Evo"];
pub(super) const CARS: [&str; 6] =
    ["Toyota Vios", "Hyundai Accent", "Kia Morning", "Mazda 3", "VinFast VF5", "Ford Ranger"];
