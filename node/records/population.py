"""Who the synthetic persons are: documents by issuing state, nationality basis, demography, names.

Why: the flow model (:mod:`node.records.calibration`) says how many persons of each nationality
travel; this module says what such a person looks like in a record. It is kept apart from the
flow figures because it changes for other reasons (a new passport format, a wider name pool) and
is read by other code (the sampling tables of :mod:`node.records.synthetic_tables`).

Invariants:
* Everything is a constant or a pure lookup; nothing reads files or draws random numbers.
* Document number formats use ``a`` for a letter, ``d`` a digit, ``n`` a digit 1-9; any other
  character is literal. Every nationality of the flow model has a name group
  (:func:`name_group` raises otherwise).
* The identity pools are written by hand and modest. They hold no comma, quote or line break (the
  generator writes them without CSV quoting and checks this when it builds its tables).
* Nationality-basis shares stay inside DESIGN.md §12: 10-25 % of African and Haitian flows are
  recorded with a presumed or unknown nationality.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


def words(text: str) -> tuple[str, ...]:
    """``"A B C"`` -> ``("A", "B", "C")``: keeps long code tables readable."""
    return tuple(text.split())


AFRICAN: frozenset[str] = frozenset(
    words(
        "AGO BEN BFA CIV CMR COD COG EGY ERI ETH GAB GHA GIN GMB KEN MAR MLI MRT NER NGA SDN "
        "SEN SLE SOM TCD TGO UGA"
    )
)


@dataclass(frozen=True)
class BasisModel:
    """How a nationality gets recorded: ``has_document`` (the person carries one), ``shows``
    (it is used as the basis when carried); otherwise declared / presumed / unknown."""

    has_document: float
    shows: float
    declared: float
    presumed: float
    unknown: float

    def presumed_or_unknown(self) -> float:
        return (1 - self.has_document * self.shows) * (self.presumed + self.unknown)


#: African and Haitian flows: 19 % presumed or unknown, inside the 10-25 % of DESIGN.md §12.
BASIS_AFRICAN_HAITIAN = BasisModel(0.60, 0.95, 0.55, 0.30, 0.15)
BASIS_OTHER = BasisModel(0.82, 0.95, 0.80, 0.15, 0.05)


def basis_model(nationality: str) -> BasisModel:
    return BASIS_AFRICAN_HAITIAN if nationality in AFRICAN or nationality == "HTI" else BASIS_OTHER


#: (share of minors, share of men among adults) by demographic profile (assumed).
DEMOGRAPHY: Mapping[str, tuple[float, float]] = {
    "family": (0.25, 0.55), "child": (0.85, 0.5), "mixed": (0.12, 0.62), "male": (0.05, 0.86),
}  # fmt: skip
_FAMILY = words("VEN ECU COL PER HTI DOM BOL GTM HND SLV NIC CRI PAN")
_MIXED = words("CUB CHN VNM RUS TUR UZB KAZ KGZ TJK GEO ARM MEX TWN PHL IDN MMR ARG URY PRY SUR")
_MIXED += words("GUY JAM TTO")


def demography(nationality: str) -> tuple[float, float]:
    if nationality in ("BRA", "CHL"):
        return DEMOGRAPHY["child"]  # in this flow mostly children of Haitians
    if nationality in _FAMILY:
        return DEMOGRAPHY["family"]
    return DEMOGRAPHY["mixed" if nationality in _MIXED else "male"]


#: Passport (TD3) number formats: ``a`` letter, ``d`` digit, ``n`` digit 1-9, others literal.
PASSPORT_FORMATS: Mapping[str, str] = {
    "VEN": "nddddddd", "CUB": "adddddd", "HTI": "aaddddddd", "ECU": "Addddddd",
    "COL": "aadddddd", "PER": "nddddddd", "CHN": "Edddddddd", "IND": "addddddd",
    "NPL": "ndddddddd", "BGD": "aaddddddd", "PAK": "aaddddddd", "LKA": "Nddddddd",
    "AFG": "Pdddddddd", "CMR": "aadddddd", "COD": "OPddddddd", "AGO": "Nddddddd",
    "SEN": "Adddddddd", "GIN": "Rddddddd", "RUS": "7nddddddd", "TUR": "Udddddddd",
    "UZB": "FAddddddd", "MEX": "Gdddddddd", "BRA": "aadddddd", "CHL": "Fdddddddd",
}  # fmt: skip
DEFAULT_PASSPORT_FORMAT = "aaddddddd"
#: Identity cards (TD1) accepted as travel documents in the region, with the share of holders
#: who carry one. Numbers over nine characters use the TD1 overflow.
ID_CARD_FORMATS: Mapping[str, tuple[str, float]] = {
    "ECU": ("nddddddddd", 0.3), "COL": ("nddddddddd", 0.3), "PER": ("dddddddd", 0.3),
    "VEN": ("nddddddd", 0.3), "DOM": ("nddddddddd", 0.2), "HND": ("ndddddddddddd", 0.5),
    "GTM": ("ndddddddddddd", 0.5), "SLV": ("ndddddddd", 0.5), "NIC": ("ndddddddddddda", 0.5),
    "CRI": ("ndddddddd", 0.5), "CHN": ("ndddddddddddddddd", 0.05), "SEN": ("ndddddddddddd", 0.15),
}  # fmt: skip
PASSPORT_VALIDITY_YEARS: Mapping[str, int] = {"CUB": 6, "VEN": 5, "HTI": 5}


# --- Identity pools (written by hand, modest): surnames | female | male given names ----------
# "_" joins words of one name. Spellings keep their accents and hyphens so that normalisation is
# exercised; CYRILLIC gives local-script spellings that transliterate back exactly.
NAME_POOLS: Mapping[str, tuple[str, str, str, float]] = {
    "hispanic": (
        "García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores "
        "Rivera Gómez Díaz Reyes Morales Cruz Ortiz Gutiérrez Chávez Ramos Mendoza Castillo "
        "Jiménez Vásquez Romero Herrera Medina Aguilar Núñez Peña Rojas Guerrero Suárez Castro "
        "Méndez Salazar De_la_Cruz Quintero Colmenares Briceño Zambrano Carrillo Ibáñez",
        "María Ana Carmen Yusleidy Daniela Gabriela Valentina Andrea Yuliana Mariela Yolanda "
        "Luisa Camila Isabel Dayana Rosa Fernanda Lucía Milagros Yanet Begoña",
        "José Luis Carlos Juan Jesús Miguel Yoel Jorge Pedro Rafael Alejandro Daniel Andrés "
        "Yonathan Víctor Ángel Julio Eduardo Manuel Francisco Yordan", 0.6),
    "haitian": (
        "Jean-Baptiste Pierre Joseph Saint-Fleur Désir Louis Charles Étienne Dorvil Augustin "
        "Bien-Aimé Célestin Toussaint Jean-Louis Cadet Delva Exantus Fils-Aimé Jeune Laguerre "
        "Lamour Métellus Noël Petit-Frère Pierre-Louis Romélus Saint-Jean Thélusma Zéphir",
        "Marie Nadège Fabiola Wideline Jocelyne Rosemène Lovely Ketly Guerline Mirlande Roseline "
        "Judith Esther Nathalie Manoucheka Sabine",
        "Jean Wilson Jimmy Mackenson Dieunel Stanley Frantz Wesner Jean-Claude Ricardo Peterson "
        "Wilner Emmanuel Kervens Jean-Robert Fritznel", 0.4),
    "haitian_kids": (
        "Jean-Baptiste Pierre Joseph Désir Louis Charles Étienne Augustin Célestin Toussaint "
        "Cadet Delva Exantus Jeune Lamour Noël Saint-Jean Zéphir",
        "Vitória Sofía Isabella Emanuelly Valentina Camila Ana_Clara Antonella Josefa",
        "Davi Matheus João Benjamín Agustín Thiago Vicente Gabriel Lucas", 0.3),
    "indian": (
        "Singh Patel Kumar Sharma Yadav Gupta Shah Chaudhary Rana Reddy Das Verma Kaur Gill "
        "Sandhu Dhillon Mehta Joshi Thakur Bhatt",
        "Harpreet Gurpreet Manpreet Priya Pooja Jaspreet Simran Neha Anjali Kiran",
        "Rajesh Amit Sunil Vikram Sandeep Mehul Gurjeet Harjit Rohit Ankit Vijay Jaswinder", 0.2),
    "nepali": (
        "Shrestha Gurung Tamang Thapa Magar Rai Limbu Karki Adhikari Bhattarai Poudel Khadka "
        "Sherpa Basnet", "Sunita Kamala Sarita Anita Sabina Gita Manisha Bishnu",
        "Bikash Suman Ramesh Sagar Anil Prakash Dipendra Rajendra Santosh Kiran", 0.15),
    "bangladeshi": (
        "Hossain Rahman Islam Ahmed Uddin Akter Begum Chowdhury Miah Sarkar Khan Alam Mollah "
        "Sheikh", "Nasrin Fatema Shirin Rupa Sumaiya Taslima",
        "Mohammad Abdul Rafiq Shahidul Jahid Sohel Rubel Mizanur Kamrul Jahangir", 0.3),
    "pakistani": (
        "Khan Ahmed Ali Hussain Butt Malik Qureshi Chaudhry Iqbal Raza Shah Akhtar",
        "Ayesha Fatima Sana Hina Nadia", "Muhammad Imran Bilal Usman Faisal Tariq Asif Kashif",
        0.3),
    "srilankan": (
        "Perera Fernando De_Silva Jayasinghe Sivakumar Rajapaksha Wickramasinghe Bandara Kumara "
        "Senanayake Tharmalingam", "Nuwani Dilani Kavitha Tharushi Priyanka",
        "Nuwan Chaminda Tharindu Kasun Suresh Niroshan", 0.3),
    "chinese": (
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lü He Gao Lin "
        "Zheng Xie Luo", "Fang Jing Min Yan Xiuying Haiyan Lina Xiaomei Yuxin Zihan Ting",
        "Wei Jun Lei Yang Jianhua Zhiqiang Hao Yuxuan Qiang Bo Tao Peng", 0.0),
    "vietnamese": (
        "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ",
        "Thị_Hương Thị_Lan Ngọc_Anh Thu_Trang Thị_Mai", "Văn_Hùng Minh_Tuấn Đức_Anh Quang_Huy "
        "Văn_Nam", 0.0),
    "southeast_asian": (
        "Aung Kyaw Win Htun Santoso Wijaya Pratama Dela_Cruz Bautista Santos",
        "Siti Dewi Thandar Aye Rosalie Maricel", "Aung Ko Budi Agus Joel Mark", 0.2),
    "cameroonian": (
        "Mbarga Nkoulou Fotso Tchoumi Ndongo Essomba Kamga Nana Tchakounté Ngono Abena "
        "Atangana Fokou Njoya Ewane", "Aurélie Christelle Sandrine Brigitte Clarisse Mireille",
        "Jean-Pierre Ghislain Brice Hervé Yannick Landry Blaise Arnaud Serge", 0.3),
    "congolese": (
        "Mukendi Kalonji Tshibangu Ilunga Mbuyi Kabongo Lukusa Ngalula Mutombo Kasongo Nsimba "
        "Mulumba Kapinga Lumbala", "Divine Grâce Merveille Ornella Bénédicte Naomie",
        "Patrick Glody Plamedi Exaucé Héritier Christian Benjamin Trésor Jonathan", 0.3),
    "angolan": (
        "Dos_Santos Da_Silva Domingos Sebastião Kiala Lutumba Mavinga Cassoma Chipenda "
        "Kambala Tavares Neto", "Feliciana Domingas Teresa Isabel Esperança Luzia",
        "Adilson Edson Nelson Eduardo Joaquim Valdemar Osvaldo Mateus", 0.4),
    "senegalese": (
        "Diop Ndiaye Fall Sow Diallo Ba Sarr Faye Gueye Mbaye Sy Cissé Niang Thiam Ndour Seck "
        "N'Diaye", "Aminata Fatou Awa Khady Mariama Ndèye Coumba Astou",
        "Mamadou Moussa Ousmane Cheikh Ibrahima Abdoulaye Modou Babacar Serigne Pape Lamine",
        0.2),
    "west_francophone": (
        "Diallo Barry Bah Camara Condé Keïta Sylla Touré Soumah Baldé Kourouma Traoré "
        "Coulibaly Ouédraogo Koné Sanogo Kaboré Dembélé",
        "Mariama Kadiatou Fanta Aissatou Hawa Salimata Djénéba Oumou",
        "Alpha Ibrahima Thierno Oumar Sekou Boubacar Mamadou Amadou Souleymane Issiaka Adama",
        0.3),
    "mauritanian": (
        "Ould_Ahmed Ould_Mohamed Ould_Sidi Ould_Cheikh Ould_Brahim Kane Wane Sy Ba",
        "Aïcha Mariem Fatimetou Khadijetou Zeinebou",
        "Mohamed Ahmed Sidi Cheikh Moulaye Lemine Brahim Mohamed_Salem", 0.2),
    "anglophone_african": (
        "Mensah Owusu Boateng Asante Adeyemi Okafor Okonkwo Bello Kamara Conteh Koroma Ochieng "
        "Otieno Mugisha Okello Eze", "Ama Akosua Ngozi Chiamaka Fatmata Grace Blessing Wanjiru",
        "Kwame Kofi Chinedu Emeka Ibrahim Samuel Joseph Brian Kelvin", 0.3),
    "horn_of_africa": (
        "Tesfay Gebremedhin Haile Berhane Tesfamariam Abdi Warsame Osman Yohannes Girma "
        "Mengistu Hassan", "Senait Hodan Hiwet Selam Fatuma Meron Ikram Rahel",
        "Yonas Abdirahman Filimon Mebrahtu Dawit Abdullahi Tekle Bereket Mustafa", 0.2),
    "afghan": (
        "Ahmadi Hakimi Rahimi Noori Karimi Popal Stanekzai Hashimi Sadat Mohammadi Azizi "
        "Haidari Amiri Sultani Safi", "Zahra Mariam Nasrin Fereshta Madina Shabnam Zarghona",
        "Ahmad Mohammad Abdul Farid Hamid Shafiq Wahid Jawad Naveed Ajmal", 0.2),
    "middle_eastern": (
        "Al-Hassan Haddad Khalil Mansour Saleh Hosseini Moradi Rezaei Abdallah Ibrahim Nasser "
        "El_Amrani Benali Al-Sayed Farouk", "Layla Fatemeh Nour Yasmin Rania Samira Maryam",
        "Omar Khaled Reza Ali Youssef Hassan Karim Mehdi", 0.2),
    "turkish": (
        "Yılmaz Kaya Demir Şahin Çelik Öztürk Aydın Arslan Doğan Koç Kılıç Yıldız",
        "Ayşe Emine Fatma Zeynep Elif Büşra", "Mehmet Mustafa Ahmet Emre Hüseyin Murat Oğuz",
        0.2),
    "central_asian": (
        "Karimov Rakhimov Tursunov Nazarov Sadykov Abdullaev Iusupov Ermekov Mirzaev Saidov "
        "Rashidov Aliev", "Dilnoza Gulnara Aziza Madina Zarina Nodira",
        "Aziz Bekzod Timur Rustam Jasur Sardor Farrukh Ulugbek", 0.1),
    "slavic_caucasian": (
        "Ivanov Petrov Smirnov Kuznetsov Popov Sokolov Volkov Morozov Beridze Kapanadze "
        "Petrosian Hovhannisyan", "Anna Elena Olga Natalia Tatiana Nino Ani",
        "Aleksandr Dmitrii Sergei Andrei Maksim Giorgi Aram Nikolai", 0.1),
    "caribbean": (
        "Williams Brown Campbell Thomas Clarke Henry Persaud Ramdin Baptiste O'Neil Mohammed",
        "Shanice Keisha Tamika Ashley Latoya Nadia", "Andre Marlon Dwayne Kevin Richard Shane",
        0.3),
}  # fmt: skip
NAME_GROUPS: Mapping[str, tuple[str, ...]] = {
    "hispanic": words("VEN CUB ECU COL PER DOM BOL ARG URY PRY GTM HND SLV NIC MEX CRI PAN"),
    "haitian": ("HTI",), "haitian_kids": ("BRA", "CHL"), "indian": ("IND",),
    "nepali": ("NPL",), "bangladeshi": ("BGD",), "pakistani": ("PAK",),
    "srilankan": ("LKA",), "chinese": ("CHN", "TWN"), "vietnamese": ("VNM",),
    "southeast_asian": ("PHL", "IDN", "MMR"), "cameroonian": ("CMR", "GAB", "COG", "TCD"),
    "congolese": ("COD",), "angolan": ("AGO",), "senegalese": ("SEN", "GMB"),
    "west_francophone": words("GIN MLI BFA NER CIV TGO BEN"), "mauritanian": ("MRT",),
    "anglophone_african": words("GHA NGA SLE KEN UGA"),
    "horn_of_africa": words("ERI ETH SOM SDN"), "afghan": ("AFG",),
    "middle_eastern": words("SYR IRQ YEM EGY JOR LBN MAR IRN"), "turkish": ("TUR",),
    "central_asian": words("UZB KAZ KGZ TJK"), "slavic_caucasian": words("RUS GEO ARM"),
    "caribbean": words("JAM TTO GUY SUR"),
}  # fmt: skip
CYRILLIC: Mapping[str, str] = {
    "Ivanov": "Иванов", "Petrov": "Петров", "Smirnov": "Смирнов", "Kuznetsov": "Кузнецов",
    "Popov": "Попов", "Sokolov": "Соколов", "Volkov": "Волков", "Morozov": "Морозов",
    "Karimov": "Каримов", "Rakhimov": "Рахимов", "Tursunov": "Турсунов", "Nazarov": "Назаров",
    "Sadykov": "Садыков", "Abdullaev": "Абдуллаев", "Iusupov": "Юсупов", "Aliev": "Алиев",
    "Anna": "Анна", "Elena": "Елена", "Olga": "Ольга", "Natalia": "Наталья",
    "Aleksandr": "Александр", "Dmitrii": "Дмитрий", "Sergei": "Сергей", "Andrei": "Андрей",
    "Timur": "Тимур", "Aziz": "Азиз", "Rustam": "Рустам", "Madina": "Мадина",
}  # fmt: skip


def name_group(nationality: str) -> str:
    for group, members in NAME_GROUPS.items():
        if nationality in members:
            return group
    raise KeyError(f"no name pool for nationality {nationality}")
