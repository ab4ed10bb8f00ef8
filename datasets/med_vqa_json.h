// Readers for the two public medical VQA benchmarks' question files, into one record type.
//
// VQA-RAD (Lau et al. 2018, "A dataset of clinically generated visual questions and answers about
// radiology images", Scientific Data 5:180251), file "VQA_RAD Dataset Public.json": a JSON array of
// objects. Fields read (others, e.g. phrase_type, question_rephrase, evaluation, are ignored):
//   field          type               required  -> MedVqaRecord
//   qid            int or string      no        id (absent: the record index)
//   image_name     string             yes       image           e.g. "synpic54610.jpg"
//   question       string             yes       question
//   answer         string or number   yes       answer          numbers normalised to their JSON text: 2 -> "2", 2.5 -> "2.5"
//   answer_type    string             yes       closed          "CLOSED"/"OPEN", case-insensitive, surrounding blanks ignored
//   question_type  string             no        question_type   e.g. "PRES", "MODALITY", "POS, PRES"
//   image_organ    string             no        location        "HEAD", "CHEST", "ABD"
// lang is "en"; modality is empty (VQA-RAD does not record it per question).
//
// SLAKE (Liu et al. 2021, "SLAKE: a semantically-labeled knowledge-enhanced dataset for medical VQA",
// ISBI), files train.json / validate.json / test.json: a JSON array of objects. Fields read (others,
// e.g. base_type, triple, are ignored):
//   field          type               required  -> MedVqaRecord
//   qid            int or string      no        id (absent: the record index)
//   img_id         int or string      no        (kept in image_id)
//   img_name       string             yes       image           e.g. "xmlab102/source.jpg"
//   question       string             yes       question
//   answer         string or number   yes       answer          normalised as for VQA-RAD
//   answer_type    string             yes       closed          as for VQA-RAD
//   q_lang         string             yes       lang            "en" or "zh"
//   content_type   string             no        question_type   e.g. "Modality", "Position", "Abnormality"
//   modality       string             no        modality        "CT", "MRI", "X-Ray"
//   location       string             no        location        e.g. "Abdomen", "Lung"
// SLAKE holds the same questions in English and Chinese; read_slake_json keeps one language
// ("en" by default, "zh", or "all").
//
// Errors: a file that cannot be read or parsed, a top level that is not an array, a record that is
// not an object, a required field missing, a field of the wrong type, answer_type not CLOSED/OPEN, or
// q_lang not en/zh -> spikefm::Error naming the file, the record index (and qid when known) and the
// field.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace spikefm {

struct MedVqaRecord {
  std::string id;             // qid as text; the record index when the file has no qid
  std::string image;          // image file name, relative to the benchmark's image folder
  std::string image_id;       // SLAKE img_id as text, empty otherwise
  std::string question;
  std::string answer;         // as text (numeric answers normalised, see above)
  bool closed = false;        // answer_type CLOSED (yes/no or fixed choice) vs OPEN
  std::string question_type;  // VQA-RAD question_type / SLAKE content_type; empty when absent
  std::string location;       // VQA-RAD image_organ / SLAKE location; empty when absent
  std::string modality;       // SLAKE modality; empty for VQA-RAD
  std::string lang = "en";    // "en" or "zh"
};

std::vector<MedVqaRecord> read_vqa_rad_json(const std::filesystem::path& path);

// lang: "en" (default), "zh" or "all". Any other value is an Error.
std::vector<MedVqaRecord> read_slake_json(const std::filesystem::path& path, const std::string& lang = "en");

}  // namespace spikefm
