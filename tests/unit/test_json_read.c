#include "core/json_read.h"
#include "test.h"

#include <math.h>
#include <stdint.h>

/*
 * Conformance cases written from nst/JSONTestSuite (test_parsing/), named as there: y_ must
 * parse, n_ must be refused. Bytes are as in the suite's files; a literal is split after a
 * \x escape when a hex digit follows. Two y_ cases are deliberately not here:
 * y_object_duplicated_key and y_object_duplicated_key_and_value, since we refuse duplicate
 * keys (see dup_keys_refused, which has them under our own names).
 */
typedef struct suite_case {
    const char *name;
    const char *text;
    size_t len;
} suite_case_t;

#define CASE(name, lit)                                                                                      \
    {                                                                                                        \
        name, lit, sizeof(lit) - 1                                                                           \
    }

static const suite_case_t y_cases[] = {
    CASE("y_array_arraysWithSpaces", "[[]   ]"),
    CASE("y_array_empty-string", "[\"\"]"),
    CASE("y_array_empty", "[]"),
    CASE("y_array_ending_with_newline", "[\"a\"]"),
    CASE("y_array_false", "[false]"),
    CASE("y_array_heterogeneous", "[null, 1, \"1\", {}]"),
    CASE("y_array_null", "[null]"),
    CASE("y_array_with_1_and_newline", "[1\n]"),
    CASE("y_array_with_leading_space", " [1]"),
    CASE("y_array_with_several_null", "[1,null,null,null,2]"),
    CASE("y_array_with_trailing_space", "[2] "),
    CASE("y_number", "[123e65]"),
    CASE("y_number_0e+1", "[0e+1]"),
    CASE("y_number_0e1", "[0e1]"),
    CASE("y_number_after_space", "[ 4]"),
    CASE("y_number_double_close_to_zero",
         "[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]\n"),
    CASE("y_number_int_with_exp", "[20e1]"),
    CASE("y_number_minus_zero", "[-0]"),
    CASE("y_number_negative_int", "[-123]"),
    CASE("y_number_negative_one", "[-1]"),
    CASE("y_number_negative_zero", "[-0]"),
    CASE("y_number_real_capital_e", "[1E22]"),
    CASE("y_number_real_capital_e_neg_exp", "[1E-2]"),
    CASE("y_number_real_capital_e_pos_exp", "[1E+2]"),
    CASE("y_number_real_exponent", "[123e45]"),
    CASE("y_number_real_fraction_exponent", "[123.456e78]"),
    CASE("y_number_real_neg_exp", "[1e-2]"),
    CASE("y_number_real_pos_exponent", "[1e+2]"),
    CASE("y_number_simple_int", "[123]"),
    CASE("y_number_simple_real", "[123.456789]"),
    CASE("y_object", "{\"asd\":\"sdf\", \"dfg\":\"fgh\"}"),
    CASE("y_object_basic", "{\"asd\":\"sdf\"}"),
    CASE("y_object_empty", "{}"),
    CASE("y_object_empty_key", "{\"\":0}"),
    CASE("y_object_escaped_null_in_key", "{\"foo\\u0000bar\": 42}"),
    CASE("y_object_extreme_numbers", "{ \"min\": -1.0e+28, \"max\": 1.0e+28 }"),
    CASE("y_object_long_strings", "{\"x\":[{\"id\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}], \"id\": "
                                  "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"),
    CASE("y_object_simple", "{\"a\":[]}"),
    CASE("y_object_string_unicode", "{\"title\":\"\\u041f\\u043e\\u043b\\u0442\\u043e\\u0440\\u0430 "
                                    "\\u0417\\u0435\\u043c\\u043b\\u0435\\u043a\\u043e\\u043f\\u0430\" }"),
    CASE("y_object_with_newlines", "{\n\"a\": \"b\"\n}"),
    CASE("y_string_1_2_3_bytes_UTF-8_sequences", "[\"\\u0060\\u012a\\u12AB\"]"),
    CASE("y_string_accepted_surrogate_pair", "[\"\\uD801\\udc37\"]"),
    CASE("y_string_accepted_surrogate_pairs", "[\"\\ud83d\\ude39\\ud83d\\udc8d\"]"),
    CASE("y_string_allowed_escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"),
    CASE("y_string_backslash_and_u_escaped_zero", "[\"\\\\u0000\"]"),
    CASE("y_string_backslash_doublequotes", "[\"\\\"\"]"),
    CASE("y_string_comments", "[\"a/*b*/c/*d//e\"]"),
    CASE("y_string_double_escape_a", "[\"\\\\a\"]"),
    CASE("y_string_double_escape_n", "[\"\\\\n\"]"),
    CASE("y_string_escaped_control_character", "[\"\\u0012\"]"),
    CASE("y_string_escaped_noncharacter", "[\"\\uFFFF\"]"),
    CASE("y_string_in_array", "[\"asd\"]"),
    CASE("y_string_in_array_with_leading_space", "[ \"asd\"]"),
    CASE("y_string_last_surrogates_1_and_2", "[\"\\uDBFF\\uDFFF\"]"),
    CASE("y_string_nbsp_uescaped", "[\"new\\u00A0line\"]"),
    CASE("y_string_nonCharacterInUTF-8_U+10FFFF", "[\"\xf4\x8f\xbf\xbf\"]"),
    CASE("y_string_nonCharacterInUTF-8_U+FFFF", "[\"\xef\xbf\xbf\"]"),
    CASE("y_string_null_escape", "[\"\\u0000\"]"),
    CASE("y_string_one-byte-utf-8", "[\"\\u002c\"]"),
    CASE("y_string_pi", "[\"\xcf\x80\"]"),
    CASE("y_string_reservedCharacterInUTF-8_U+1BFFF", "[\"\xf0\x9b\xbf\xbf\"]"),
    CASE("y_string_simple_ascii", "[\"asd \"]"),
    CASE("y_string_space", "\" \""),
    CASE("y_string_surrogates_U+1D11E_MUSICAL_SYMBOL_G_CLEF", "[\"\\uD834\\uDd1e\"]"),
    CASE("y_string_three-byte-utf-8", "[\"\\u0821\"]"),
    CASE("y_string_two-byte-utf-8", "[\"\\u0123\"]"),
    CASE("y_string_u+2028_line_sep", "[\"\xe2\x80\xa8\"]"),
    CASE("y_string_u+2029_par_sep", "[\"\xe2\x80\xa9\"]"),
    CASE("y_string_uEscape", "[\"\\u0061\\u30af\\u30EA\\u30b9\"]"),
    CASE("y_string_uescaped_newline", "[\"new\\u000Aline\"]"),
    CASE("y_string_unescaped_char_delete", "[\"\x7f\"]"),
    CASE("y_string_unicode", "[\"\\uA66D\"]"),
    CASE("y_string_unicodeEscapedBackslash", "[\"\\u005C\"]"),
    CASE("y_string_unicode_2", "[\"\xe2\x8d\x82\xe3\x88\xb4\xe2\x8d\x82\"]"),
    CASE("y_string_unicode_U+10FFFE_nonchar", "[\"\\uDBFF\\uDFFE\"]"),
    CASE("y_string_unicode_U+FDD0_nonchar", "[\"\\uFDD0\"]"),
    CASE("y_string_unicode_escaped_double_quote", "[\"\\u0022\"]"),
    CASE("y_string_utf8", "[\"\xe2\x82\xac\xf0\x9d\x84\x9e\"]"),
    CASE("y_string_with_del_character", "[\"a\x7f"
                                        "a\"]"),
    CASE("y_structure_lonely_false", "false"),
    CASE("y_structure_lonely_int", "42"),
    CASE("y_structure_lonely_negative_real", "-0.1"),
    CASE("y_structure_lonely_null", "null"),
    CASE("y_structure_lonely_string", "\"asd\""),
    CASE("y_structure_lonely_true", "true"),
    CASE("y_structure_string_empty", "\"\""),
    CASE("y_structure_trailing_newline", "[\"a\"]\n"),
    CASE("y_structure_true_in_array", "[true]"),
    CASE("y_structure_whitespace_array", " [] "),
};

static const suite_case_t n_cases[] = {
    CASE("n_array_1_true_without_comma", "[1 true]"),
    CASE("n_array_a_invalid_utf8", "[a\xe5]"),
    CASE("n_array_colon_instead_of_comma", "[\"\": 1]"),
    CASE("n_array_comma_after_close", "[\"\"],"),
    CASE("n_array_comma_and_number", "[,1]"),
    CASE("n_array_double_comma", "[1,,2]"),
    CASE("n_array_double_extra_comma", "[\"x\",,]"),
    CASE("n_array_extra_close", "[\"x\"]]"),
    CASE("n_array_extra_comma", "[\"\",]"),
    CASE("n_array_incomplete", "[\"x\""),
    CASE("n_array_incomplete_invalid_value", "[x"),
    CASE("n_array_inner_array_no_comma", "[3[4]]"),
    CASE("n_array_invalid_utf8", "[\xff]"),
    CASE("n_array_items_separated_by_semicolon", "[1:2]"),
    CASE("n_array_just_comma", "[,]"),
    CASE("n_array_just_minus", "[-]"),
    CASE("n_array_missing_value", "[   , \"\"]"),
    CASE("n_array_newlines_unclosed", "[\"a\",\n4\n,1,"),
    CASE("n_array_number_and_comma", "[1,]"),
    CASE("n_array_number_and_several_commas", "[1,,]"),
    CASE("n_array_spaces_vertical_tab_formfeed", "[\"\x0b"
                                                 "a\"\\f]"),
    CASE("n_array_star_inside", "[*]"),
    CASE("n_array_unclosed", "[\"\""),
    CASE("n_array_unclosed_trailing_comma", "[1,"),
    CASE("n_array_unclosed_with_new_lines", "[1,\n1\n,1"),
    CASE("n_array_unclosed_with_object_inside", "[{}"),
    CASE("n_incomplete_false", "[fals]"),
    CASE("n_incomplete_null", "[nul]"),
    CASE("n_incomplete_true", "[tru]"),
    CASE("n_multidigit_number_then_00", "123\0"),
    CASE("n_number_++", "[++1234]"),
    CASE("n_number_+1", "[+1]"),
    CASE("n_number_+Inf", "[+Inf]"),
    CASE("n_number_-01", "[-01]"),
    CASE("n_number_-1.0.", "[-1.0.]"),
    CASE("n_number_-2.", "[-2.]"),
    CASE("n_number_-NaN", "[-NaN]"),
    CASE("n_number_.-1", "[.-1]"),
    CASE("n_number_.2e-3", "[.2e-3]"),
    CASE("n_number_0.1.2", "[0.1.2]"),
    CASE("n_number_0.3e+", "[0.3e+]"),
    CASE("n_number_0.3e", "[0.3e]"),
    CASE("n_number_0.e1", "[0.e1]"),
    CASE("n_number_0_capital_E+", "[0E+]"),
    CASE("n_number_0_capital_E", "[0E]"),
    CASE("n_number_0e+", "[0e+]"),
    CASE("n_number_0e", "[0e]"),
    CASE("n_number_1.0e+", "[1.0e+]"),
    CASE("n_number_1.0e-", "[1.0e-]"),
    CASE("n_number_1.0e", "[1.0e]"),
    CASE("n_number_1_000", "[1 000.0]"),
    CASE("n_number_1eE2", "[1eE2]"),
    CASE("n_number_2.e+3", "[2.e+3]"),
    CASE("n_number_2.e-3", "[2.e-3]"),
    CASE("n_number_2.e3", "[2.e3]"),
    CASE("n_number_9.e+", "[9.e+]"),
    CASE("n_number_-00.0", "-00.0"),
    CASE("n_number_00.0", "00.0"),
    CASE("n_number_Inf", "[Inf]"),
    CASE("n_number_NaN", "[NaN]"),
    CASE("n_number_U+FF11_fullwidth_digit_one", "[\xef\xbc\x91]"),
    CASE("n_number_expression", "[1+2]"),
    CASE("n_number_hex_1_digit", "[0x1]"),
    CASE("n_number_hex_2_digits", "[0x42]"),
    CASE("n_number_infinity", "[Infinity]"),
    CASE("n_number_invalid+-", "[0e+-1]"),
    CASE("n_number_invalid-negative-real", "[-123.123foo]"),
    CASE("n_number_minus_infinity", "[-Infinity]"),
    CASE("n_number_minus_sign_with_trailing_garbage", "[-foo]"),
    CASE("n_number_minus_space_1", "[- 1]"),
    CASE("n_number_neg_int_starting_with_zero", "[-012]"),
    CASE("n_number_neg_real_without_int_part", "[-.123]"),
    CASE("n_number_neg_with_garbage_at_end", "[-1x]"),
    CASE("n_number_real_garbage_after_e", "[1ea]"),
    CASE("n_number_real_with_invalid_utf8_after_e", "[1e\xe5]"),
    CASE("n_number_real_without_fractional_part", "[1.]"),
    CASE("n_number_starting_with_dot", "[.123]"),
    CASE("n_number_with_alpha", "[1.2a-3]"),
    CASE("n_number_with_alpha_char", "[1.8011670033376514H-308]"),
    CASE("n_number_with_leading_zero", "[012]"),
    CASE("n_object_bad_value", "[\"x\", truth]"),
    CASE("n_object_bracket_key", "{[: \"x\"}\n"),
    CASE("n_object_comma_instead_of_colon", "{\"x\", null}"),
    CASE("n_object_double_colon", "{\"x\"::\"b\"}"),
    CASE("n_object_emoji", "{\xf0\x9f\x87\xa8\xf0\x9f\x87\xad}"),
    CASE("n_object_garbage_at_end", "{\"a\":\"a\" 123}"),
    CASE("n_object_key_with_single_quotes", "{key: 'value'}"),
    CASE("n_object_lone_continuation_byte_in_key_and_trailing_comma", "{\"\xb9\":\"0\",}"),
    CASE("n_object_missing_colon", "{\"a\" b}"),
    CASE("n_object_missing_key", "{:\"b\"}"),
    CASE("n_object_missing_semicolon", "{\"a\" \"b\"}"),
    CASE("n_object_missing_value", "{\"a\":"),
    CASE("n_object_no-colon", "{\"a\""),
    CASE("n_object_non_string_key", "{1:1}"),
    CASE("n_object_non_string_key_but_huge_number_instead", "{9999E9999:1}"),
    CASE("n_object_repeated_null_null", "{null:null,null:null}"),
    CASE("n_object_several_trailing_commas", "{\"id\":0,,,,,}"),
    CASE("n_object_single_quote", "{'a':0}"),
    CASE("n_object_trailing_comma", "{\"id\":0,}"),
    CASE("n_object_trailing_comment", "{\"a\":\"b\"}/**/"),
    CASE("n_object_trailing_comment_open", "{\"a\":\"b\"}/**//"),
    CASE("n_object_trailing_comment_slash_open", "{\"a\":\"b\"}//"),
    CASE("n_object_trailing_comment_slash_open_incomplete", "{\"a\":\"b\"}/"),
    CASE("n_object_two_commas_in_a_row", "{\"a\":\"b\",,\"c\":\"d\"}"),
    CASE("n_object_unquoted_key", "{a: \"b\"}"),
    CASE("n_object_unterminated-value", "{\"a\":\"a"),
    CASE("n_object_with_single_string", "{ \"foo\" : \"bar\", \"a\" }"),
    CASE("n_object_with_trailing_garbage", "{\"a\":\"b\"}#"),
    CASE("n_single_space", " "),
    CASE("n_string_1_surrogate_then_escape", "[\"\\uD800\\\"]"),
    CASE("n_string_1_surrogate_then_escape_u", "[\"\\uD800\\u\"]"),
    CASE("n_string_1_surrogate_then_escape_u1", "[\"\\uD800\\u1\"]"),
    CASE("n_string_1_surrogate_then_escape_u1x", "[\"\\uD800\\u1x\"]"),
    CASE("n_string_accentuated_char_no_quotes", "[\xc3\xa9]"),
    CASE("n_string_backslash_00", "[\"\\\0\"]"),
    CASE("n_string_escape_x", "[\"\\x00\"]"),
    CASE("n_string_escaped_backslash_bad", "[\"\\\\\\\"]"),
    CASE("n_string_escaped_ctrl_char_tab", "[\"\\\t\"]"),
    CASE("n_string_escaped_emoji", "[\"\\\xf0\x9f\x8c\x80\"]"),
    CASE("n_string_incomplete_escape", "[\"\\\"]"),
    CASE("n_string_incomplete_escaped_character", "[\"\\u00A\"]"),
    CASE("n_string_incomplete_surrogate", "[\"\\uD834\\uDd\"]"),
    CASE("n_string_incomplete_surrogate_escape_invalid", "[\"\\uD800\\uD800\\x\"]"),
    CASE("n_string_invalid-utf-8-in-escape", "[\"\\u\xe5\"]"),
    CASE("n_string_invalid_backslash_esc", "[\"\\a\"]"),
    CASE("n_string_invalid_unicode_escape", "[\"\\uqqqq\"]"),
    CASE("n_string_invalid_utf8_after_escape", "[\"\\\xe5\"]"),
    CASE("n_string_leading_uescaped_thinspace", "[\\u0020\"asd\"]"),
    CASE("n_string_no_quotes_with_bad_escape", "[\\n]"),
    CASE("n_string_single_doublequote", "\""),
    CASE("n_string_single_quote", "['single quote']"),
    CASE("n_string_single_string_no_double_quotes", "abc"),
    CASE("n_string_start_escape_unclosed", "[\"\\"),
    CASE("n_string_unescaped_ctrl_char", "[\"a\0a\"]"),
    CASE("n_string_unescaped_newline", "[\"new\nline\"]"),
    CASE("n_string_unescaped_tab", "[\"\t\"]"),
    CASE("n_string_unicode_CapitalU", "\"\\UA66D\""),
    CASE("n_string_with_trailing_garbage", "\"\"x"),
    CASE("n_structure_U+2060_word_joined", "[\xe2\x81\xa0]"),
    CASE("n_structure_UTF8_BOM_no_data", "\xef\xbb\xbf"),
    CASE("n_structure_angle_bracket_.", "<.>"),
    CASE("n_structure_angle_bracket_null", "[<null>]"),
    CASE("n_structure_array_trailing_garbage", "[1]x"),
    CASE("n_structure_array_with_extra_array_close", "[1]]"),
    CASE("n_structure_array_with_unclosed_string", "[\"asd]"),
    CASE("n_structure_ascii-unicode-identifier", "a\xc3\xa5"),
    CASE("n_structure_capitalized_True", "[True]"),
    CASE("n_structure_close_unopened_array", "1]"),
    CASE("n_structure_comma_instead_of_closing_brace", "{\"x\": true,"),
    CASE("n_structure_double_array", "[][]"),
    CASE("n_structure_end_array", "]"),
    CASE("n_structure_incomplete_UTF8_BOM", "\xef\xbb{}"),
    CASE("n_structure_lone-invalid-utf-8", "\xe5"),
    CASE("n_structure_lone-open-bracket", "["),
    CASE("n_structure_no_data", ""),
    CASE("n_structure_null-byte-outside-string", "[\0]"),
    CASE("n_structure_number_with_trailing_garbage", "2@"),
    CASE("n_structure_object_followed_by_closing_object", "{}}"),
    CASE("n_structure_object_unclosed_no_value", "{\"\":"),
    CASE("n_structure_object_with_comment", "{\"a\":/*comment*/\"b\"}"),
    CASE("n_structure_object_with_trailing_garbage", "{\"a\": true} \"x\""),
    CASE("n_structure_open_array_apostrophe", "['"),
    CASE("n_structure_open_array_comma", "[,"),
    CASE("n_structure_open_array_open_object", "[{"),
    CASE("n_structure_open_array_open_string", "[\"a"),
    CASE("n_structure_open_array_string", "[\"a\""),
    CASE("n_structure_open_object", "{"),
    CASE("n_structure_open_object_close_array", "{]"),
    CASE("n_structure_open_object_comma", "{,"),
    CASE("n_structure_open_object_open_array", "{["),
    CASE("n_structure_open_object_open_string", "{\"a"),
    CASE("n_structure_open_object_string_with_apostrophes", "{'a'"),
    CASE("n_structure_open_open", "[\"\\{[\"\\{[\"\\{[\"\\{"),
    CASE("n_structure_single_eacute", "\xe9"),
    CASE("n_structure_single_star", "*"),
    CASE("n_structure_trailing_#", "{\"a\":\"b\"}#{}"),
    CASE("n_structure_uescaped_LF_before_string", "[\\u000A\"\"]"),
    CASE("n_structure_unclosed_array", "[1"),
    CASE("n_structure_unclosed_array_partial_null", "[ false, nul"),
    CASE("n_structure_unclosed_array_unfinished_false", "[ true, fals"),
    CASE("n_structure_unclosed_array_unfinished_true", "[ false, tru"),
    CASE("n_structure_unclosed_object", "{\"asd\":\"asd\""),
    CASE("n_structure_unicode-identifier", "\xc3\xa5"),
    CASE("n_structure_whitespace_U+2060_word_joiner", "[\xe2\x81\xa0]"),
    CASE("n_structure_whitespace_formfeed", "[\f]"),
};

/* Implementation-defined (i_) cases: what we do, and why. */
static const suite_case_t i_refused[] = {
    /* strings must be valid UTF-8 and hold no lone surrogate, escaped or encoded */
    CASE("i_object_key_lone_2nd_surrogate", "{\"\\uDFAA\":0}"),
    CASE("i_string_1st_surrogate_but_2nd_missing", "[\"\\uDADA\"]"),
    CASE("i_string_1st_valid_surrogate_2nd_invalid", "[\"\\uD888\\u1234\"]"),
    CASE("i_string_incomplete_surrogate_and_escape_valid", "[\"\\uD800\\n\"]"),
    CASE("i_string_incomplete_surrogate_pair", "[\"\\uDd1ea\"]"),
    CASE("i_string_incomplete_surrogates_escape_valid", "[\"\\uD800\\uD800\\n\"]"),
    CASE("i_string_invalid_lonely_surrogate", "[\"\\ud800\"]"),
    CASE("i_string_invalid_surrogate", "[\"\\ud800abc\"]"),
    CASE("i_string_inverted_surrogates_U+1D11E", "[\"\\uDd1e\\uD834\"]"),
    CASE("i_string_lone_second_surrogate", "[\"\\uDFAA\"]"),
    CASE("i_string_UTF-8_invalid_sequence", "[\"\xe6\x97\xa5\xd1\x88\xfa\"]"),
    CASE("i_string_UTF8_surrogate_U+D800", "[\"\xed\xa0\x80\"]"),
    CASE("i_string_invalid_utf-8", "[\"\xff\"]"),
    CASE("i_string_iso_latin_1", "[\"\xe9\"]"),
    CASE("i_string_lone_utf8_continuation_byte", "[\"\x81\"]"),
    CASE("i_string_not_in_unicode_range", "[\"\xf4\xbf\xbf\xbf\"]"),
    CASE("i_string_overlong_sequence_2_bytes", "[\"\xc0\xaf\"]"),
    CASE("i_string_overlong_sequence_6_bytes", "[\"\xfc\x83\xbf\xbf\xbf\xbf\"]"),
    CASE("i_string_overlong_sequence_6_bytes_null", "[\"\xfc\x80\x80\x80\x80\x80\"]"),
    CASE("i_string_truncated-utf-8", "[\"\xe0\xff\"]"),
    /* a BOM or UTF-16 is not UTF-8 JSON text */
    CASE("i_structure_UTF-8_BOM_empty_object", "\xef\xbb\xbf{}"),
    CASE("i_string_utf16BE_no_BOM", "\0[\0\"\0\xe9\0\"\0]"),
    CASE("i_string_utf16LE_no_BOM", "[\0\"\0\xe9\0\"\0]\0"),
    CASE("i_string_UTF-16LE_with_BOM", "\xff\xfe[\0\"\0\xe9\0\"\0]\0"),
};

/* Numbers beyond double or int64 parse; the conversion that cannot hold them fails. */
static const suite_case_t i_parsed[] = {
    CASE("i_number_double_huge_neg_exp", "[123.456e-789]"),
    CASE("i_number_huge_exp",
         "[0.4e00669999999999999999999999999999999999999999999999999999999999999999999999999"
         "999999999999999999999999999999999999999999999999999999969999999006]"),
    CASE("i_number_neg_int_huge_exp", "[-1e+9999]"),
    CASE("i_number_pos_double_huge_exp", "[1.5e+9999]"),
    CASE("i_number_real_neg_overflow", "[-123123e100000]"),
    CASE("i_number_real_pos_overflow", "[123123e100000]"),
    CASE("i_number_real_underflow", "[123e-10000000]"),
    CASE("i_number_too_big_neg_int", "[-123123123123123123123123123123]"),
    CASE("i_number_too_big_pos_int", "[100000000000000000000]"),
    CASE("i_number_very_big_negative_int", "[-237462374673276894279832749832423479823246327846]"),
};

static json_value_t *parse(arena_t *a, const char *text, size_t len, json_error_t *err)
{
    return json_parse(a, text, len, err);
}

#define PARSE(a, lit, err) parse((a), (lit), sizeof(lit) - 1, (err))

/* Parses lit, expecting a refusal with message msg at offset off. */
static void check_refused(const char *text, size_t len, size_t off, const char *msg)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    json_error_t err = {0};
    json_value_t *v = json_parse(&a, text, len, &err);
    CHECK(v == NULL);
    if (!v) {
        CHECK_EQ_INT(err.offset, off);
        CHECK(err.message && strcmp(err.message, msg) == 0);
        if (err.message && strcmp(err.message, msg) != 0)
            printf("  message \"%s\", expected \"%s\"\n", err.message, msg);
    }
    arena_destroy(&a);
}

#define CHECK_REFUSED(lit, off, msg) check_refused((lit), sizeof(lit) - 1, (off), (msg))

static bool accepts(const char *text, size_t len)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    bool ok = json_parse(&a, text, len, NULL) != NULL;
    arena_destroy(&a);
    return ok;
}

static int run_cases(const suite_case_t *cases, size_t n, bool want_ok)
{
    int wrong = 0;
    for (size_t i = 0; i < n; i++) {
        arena_t a;
        arena_init(&a, NULL, 0);
        json_error_t err = {0};
        bool ok = json_parse(&a, cases[i].text, cases[i].len, &err) != NULL;
        if (ok != want_ok) {
            printf("  %s: %s%s\n", cases[i].name, ok ? "accepted" : "refused: ", ok ? "" : err.message);
            wrong++;
        }
        arena_destroy(&a);
    }
    return wrong;
}

TEST(suite_y_cases_parse)
{
    CHECK(ARRAY_LEN(y_cases) >= 40);
    CHECK_EQ_INT(run_cases(y_cases, ARRAY_LEN(y_cases), true), 0);
}

TEST(suite_n_cases_refused)
{
    CHECK(ARRAY_LEN(n_cases) >= 80);
    CHECK_EQ_INT(run_cases(n_cases, ARRAY_LEN(n_cases), false), 0);
}

TEST(suite_i_cases_we_refuse)
{
    CHECK_EQ_INT(run_cases(i_refused, ARRAY_LEN(i_refused), false), 0);
}

TEST(suite_i_numbers_parse_as_text)
{
    CHECK_EQ_INT(run_cases(i_parsed, ARRAY_LEN(i_parsed), true), 0);
    arena_t a;
    arena_init(&a, NULL, 0);
    const json_value_t *v;
    double d;
    int64_t i;

    /* a huge exponent keeps its text; json_get_double refuses the infinity */
    v = json_array_at(PARSE(&a, "[1.5e+9999]", NULL), 0);
    size_t n;
    const char *t = json_number_text(v, &n);
    CHECK_STRN(t, n, "1.5e+9999");
    CHECK(!json_get_double(v, &d));
    CHECK(!json_get_double(json_array_at(PARSE(&a, "[-123123e100000]", NULL), 0), &d));

    /* underflow rounds to zero and succeeds */
    d = 1;
    CHECK(json_get_double(json_array_at(PARSE(&a, "[123.456e-789]", NULL), 0), &d));
    CHECK(d == 0.0);

    /* a huge integer: no int64, but a double */
    v = json_array_at(PARSE(&a, "[-123123123123123123123123123123]", NULL), 0);
    CHECK(!json_get_i64(v, &i));
    CHECK(json_get_double(v, &d) && d < -1.2e29 && d > -1.3e29);
    arena_destroy(&a);
}

/* The JSONTestSuite's two deep cases, generated rather than stored. */
TEST(suite_n_structure_deep_nesting)
{
    size_t n = 100000;
    char *s = malloc(n * 5);
    memset(s, '[', n);
    CHECK(!accepts(s, n)); /* n_structure_100000_opening_arrays */
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * 5, "[{\"\":", 5);
    check_refused(s, n * 5, 5 * 32, "nesting too deep"); /* n_structure_open_array_object */
    free(s);
}

TEST(accessors)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    const char *text = "{\"a\": 1, \"b\": [true, false, null], \"c\": \"x\\u00e9\\ud83d\\ude00\\n\","
                       " \"d\": {\"e\": -2.5e3}, \"z\": \"\"}";
    json_error_t err;
    json_value_t *v = json_parse(&a, text, strlen(text), &err);
    CHECK(v != NULL);
    CHECK_EQ_INT(json_type(v), JSON_OBJECT);
    CHECK_EQ_INT(json_object_len(v), 5);

    static const char *keys[] = {"a", "b", "c", "d", "z"};
    for (size_t i = 0; i < 5; i++) {
        size_t kl;
        const char *k = json_object_key_at(v, i, &kl);
        CHECK_STRN(k, kl, keys[i]);
        CHECK(json_object_value_at(v, i) == json_object_get(v, keys[i]));
    }
    CHECK(json_object_key_at(v, 5, NULL) == NULL);
    CHECK(json_object_value_at(v, 5) == NULL);
    CHECK(json_object_get(v, "nope") == NULL);
    CHECK(json_object_get(v, "") == NULL);

    int64_t i64 = 0;
    CHECK(json_get_i64(json_object_get(v, "a"), &i64) && i64 == 1);

    const json_value_t *b = json_object_get(v, "b");
    CHECK_EQ_INT(json_type(b), JSON_ARRAY);
    CHECK_EQ_INT(json_array_len(b), 3);
    CHECK_EQ_INT(json_type(json_array_at(b, 0)), JSON_TRUE);
    CHECK_EQ_INT(json_type(json_array_at(b, 1)), JSON_FALSE);
    CHECK_EQ_INT(json_type(json_array_at(b, 2)), JSON_NULL);
    CHECK(json_array_at(b, 3) == NULL);

    size_t n;
    const char *s = json_string(json_object_get(v, "c"), &n);
    CHECK_STRN(s, n, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK(s[n] == '\0');
    s = json_string(json_object_get(v, "z"), &n);
    CHECK(s && n == 0 && s[0] == '\0');

    double d = 0;
    const json_value_t *e = json_object_get(json_object_get(v, "d"), "e");
    CHECK(json_get_double(e, &d) && d == -2500.0);
    CHECK(!json_get_i64(e, &i64));
    s = json_number_text(e, &n);
    CHECK_STRN(s, n, "-2.5e3");

    /* wrong types and NULL give NULL, 0 or false */
    CHECK(json_string(b, &n) == NULL && n == 0);
    CHECK(json_number_text(b, NULL) == NULL);
    CHECK(!json_get_i64(b, &i64) && !json_get_double(NULL, &d));
    CHECK(json_array_len(v) == 0 && json_object_len(b) == 0 && json_array_len(NULL) == 0);
    CHECK(json_array_at(v, 0) == NULL && json_object_get(b, "a") == NULL);
    CHECK(json_object_get(json_object_get(v, "x"), "y") == NULL);
    arena_destroy(&a);
}

TEST(nul_in_strings_and_keys)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    json_value_t *v = PARSE(&a, "{\"foo\\u0000bar\": \"a\\u0000\"}", NULL);
    size_t n;
    const char *k = json_object_key_at(v, 0, &n);
    CHECK(n == 7 && memcmp(k, "foo\0bar", 7) == 0);
    CHECK(json_object_getn(v, "foo\0bar", 7) != NULL);
    CHECK(json_object_get(v, "foo") == NULL);
    const char *s = json_string(json_object_value_at(v, 0), &n);
    CHECK(n == 2 && memcmp(s, "a\0", 3) == 0);
    arena_destroy(&a);
}

TEST(dup_keys_refused)
{
    /* the suite's y_object_duplicated_key and y_object_duplicated_key_and_value */
    CHECK_REFUSED("{\"a\":\"b\",\"a\":\"c\"}", 9, "duplicate key");
    CHECK_REFUSED("{\"a\":\"b\",\"a\":\"b\"}", 9, "duplicate key");
    /* equal after decoding */
    CHECK_REFUSED("{\"a\":1,\"\\u0061\":2}", 7, "duplicate key");
    CHECK_REFUSED("[{}, {\"x\": {\"k\":1, \"j\":2, \"k\":3}}]", 26, "duplicate key");
    /* the same key in different objects is fine; keys differing by a NUL differ */
    CHECK(accepts(LIT("{\"a\":{\"a\":1},\"b\":{\"a\":2}}")));
    CHECK(accepts(LIT("{\"a\":1,\"a\\u0000\":2}")));
}

/* An object of n members k0..k{n-1}, optionally with a duplicate of k{dup} appended. */
static char *big_object(int n, int dup, size_t *len)
{
    buf_t b = BUF_INIT;
    buf_putc(&b, '{');
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", (i * 7919) % n, i);
    if (dup >= 0)
        buf_printf(&b, ",\"k%d\":0", dup);
    buf_putc(&b, '}');
    *len = b.len;
    return b.data;
}

TEST(large_objects_sorted_index)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    size_t len;
    for (int n = 1; n <= 40; n++) {
        char *text = big_object(n, -1, &len);
        json_value_t *v = json_parse(&a, text, len, NULL);
        CHECK(v != NULL && json_object_len(v) == (size_t)n);
        for (int i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof(key), "k%d", i);
            const json_value_t *m = json_object_get(v, key);
            int64_t want = -1, got = -2;
            for (int j = 0; j < n; j++)
                if ((j * 7919) % n == i)
                    want = j;
            CHECK(json_get_i64(m, &got) && got == want);
        }
        CHECK(json_object_get(v, "k") == NULL && json_object_get(v, "k999") == NULL);
        free(text);
        for (int d = 0; d < n; d += 7) {
            text = big_object(n, d, &len);
            json_error_t err;
            CHECK(json_parse(&a, text, len, &err) == NULL);
            CHECK(strcmp(err.message, "duplicate key") == 0);
            CHECK(text[err.offset] == '"' && text[err.offset - 1] == ',' && text[len - 3] == ':');
            free(text);
        }
    }
    /* the error names the first repeated key in document order */
    CHECK_REFUSED(
        "{\"a\":0,\"b\":0,\"c\":0,\"d\":0,\"e\":0,\"f\":0,\"g\":0,\"h\":0,\"i\":0,\"z\":0,\"c\":0,\"a\":0}",
        61, "duplicate key");
    arena_destroy(&a);
}

TEST(lone_surrogates_refused)
{
    CHECK_REFUSED("\"\\ud800\"", 1, "unpaired UTF-16 surrogate");
    CHECK_REFUSED("\"\\udc00\\ud800\"", 1, "unpaired UTF-16 surrogate");
    CHECK_REFUSED("\"ab\\ud800x\"", 3, "unpaired UTF-16 surrogate");
    CHECK_REFUSED("\"\\ud800\\u0041\"", 1, "unpaired UTF-16 surrogate");
    CHECK_REFUSED("\"\\ud800\\ud800\"", 1, "unpaired UTF-16 surrogate");
    CHECK_REFUSED("{\"\\udfff\":1}", 2, "unpaired UTF-16 surrogate");
    CHECK(accepts(LIT("\"\\ud800\\udc00\\udbff\\udfff\"")));
}

TEST(invalid_utf8_refused)
{
    CHECK_REFUSED("\"\xc0\xaf\"", 1, "invalid UTF-8");         /* overlong '/' */
    CHECK_REFUSED("\"\xc1\xbf\"", 1, "invalid UTF-8");         /* overlong */
    CHECK_REFUSED("\"\xe0\x80\xaf\"", 1, "invalid UTF-8");     /* overlong, 3 bytes */
    CHECK_REFUSED("\"\xf0\x80\x80\xaf\"", 1, "invalid UTF-8"); /* overlong, 4 bytes */
    CHECK_REFUSED("\"\xed\xa0\x80\"", 1, "invalid UTF-8");     /* U+D800 */
    CHECK_REFUSED("\"\xed\xbf\xbf\"", 1, "invalid UTF-8");     /* U+DFFF */
    CHECK_REFUSED("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"); /* U+110000 */
    CHECK_REFUSED("\"\xf5\x80\x80\x80\"", 1, "invalid UTF-8");
    CHECK_REFUSED("\"ab\xe2\x82\"", 3, "invalid UTF-8"); /* truncated */
    CHECK_REFUSED("\"\xe2\x82", 0, "unterminated string");
    CHECK_REFUSED("\"\x80\"", 1, "invalid UTF-8"); /* lone continuation */
    CHECK_REFUSED("\"\xff\"", 1, "invalid UTF-8");
    CHECK_REFUSED("{\"\xc0\xaf\":1}", 2, "invalid UTF-8");  /* in a key */
    CHECK_REFUSED("[\xc3\xa9]", 1, "unexpected character"); /* outside a string */
    CHECK(accepts(
        LIT("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"")));
}

TEST(strings_control_and_escapes)
{
    CHECK_REFUSED("\"a\tb\"", 2, "control character in string");
    CHECK_REFUSED("\"a\x1f\"", 2, "control character in string");
    CHECK_REFUSED("\"\\x41\"", 1, "invalid escape in string");
    CHECK_REFUSED("\"\\u12\"", 1, "invalid \\u escape");
    CHECK_REFUSED("\"\\u12g4\"", 1, "invalid \\u escape");
    CHECK_REFUSED("'a'", 0, "strings need double quotes");
    CHECK_REFUSED("\"abc", 0, "unterminated string");
    CHECK_REFUSED("\"abc\\\"", 0, "unterminated string");

    arena_t a;
    arena_init(&a, NULL, 0);
    size_t n;
    const char *s =
        json_string(PARSE(&a, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC\x7f\"", NULL), &n);
    CHECK_STRN(s, n, "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\x7f");
    arena_destroy(&a);
}

TEST(numbers_grammar)
{
    CHECK_REFUSED("01", 1, "leading zero in number");
    CHECK_REFUSED("-01", 2, "leading zero in number");
    CHECK_REFUSED("+1", 0, "unexpected character");
    CHECK_REFUSED(".5", 0, "unexpected character");
    CHECK_REFUSED("1.", 2, "expected digit after '.'");
    CHECK_REFUSED("1e", 2, "expected digit in exponent");
    CHECK_REFUSED("1e+", 3, "expected digit in exponent");
    CHECK_REFUSED("-", 1, "invalid number");
    CHECK_REFUSED("-a", 1, "invalid number");
    CHECK_REFUSED("NaN", 0, "unexpected character");
    CHECK_REFUSED("Infinity", 0, "unexpected character");
    CHECK_REFUSED("-Infinity", 1, "invalid number");
    CHECK_REFUSED("0x10", 1, "unexpected data after the value");
    static const char *ok[] = {"0", "-0", "0.0", "-0.0e-0", "1E+9", "10", "123.456e78", "0e0"};
    for (size_t i = 0; i < ARRAY_LEN(ok); i++)
        CHECK(accepts(ok[i], strlen(ok[i])));
}

static bool get_i64(const char *text, int64_t *out)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    json_value_t *v = json_parse(&a, text, strlen(text), NULL);
    size_t n = 0;
    const char *t = json_number_text(v, &n);
    bool ok = v && json_get_i64(v, out);
    CHECK(t && n == strlen(text) && memcmp(t, text, n) == 0); /* the text survives either way */
    arena_destroy(&a);
    return ok;
}

TEST(int64_edges)
{
    int64_t v = 0;
    CHECK(get_i64("9223372036854775807", &v) && v == INT64_MAX);
    CHECK(get_i64("-9223372036854775808", &v) && v == INT64_MIN);
    CHECK(!get_i64("9223372036854775808", &v));
    CHECK(!get_i64("-9223372036854775809", &v));
    CHECK(!get_i64("18446744073709551616", &v));
    CHECK(!get_i64("99999999999999999999999", &v));
    CHECK(get_i64("-0", &v) && v == 0);
    CHECK(get_i64("0", &v) && v == 0);
    CHECK(get_i64("922337203685477580", &v) && v == 922337203685477580LL);
    CHECK(!get_i64("1.0", &v));
    CHECK(!get_i64("1e2", &v));
    CHECK(!get_i64("-1E0", &v));
}

TEST(double_edges)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    double d = 0;
    CHECK(json_get_double(PARSE(&a, "1.7976931348623157e308", NULL), &d) && d == 1.7976931348623157e308);
    CHECK(!json_get_double(PARSE(&a, "1e309", NULL), &d));
    CHECK(!json_get_double(PARSE(&a, "-1e309", NULL), &d));
    CHECK(json_get_double(PARSE(&a, "0.1", NULL), &d) && d == 0.1);
    CHECK(json_get_double(PARSE(&a, "-0", NULL), &d) && d == 0 && signbit(d));
    CHECK(json_get_double(PARSE(&a, "5e-324", NULL), &d) && d > 0);
    CHECK(json_get_double(PARSE(&a, "9223372036854775808", NULL), &d) && d == 9223372036854775808.0);
    arena_destroy(&a);
}

/* depth nested containers: arrays, or objects {"k": ...} when objects is set. */
static char *nested(int depth, bool objects, size_t *len)
{
    buf_t b = BUF_INIT;
    for (int i = 0; i < depth; i++) {
        if (objects && i % 2)
            buf_append_lit(&b, "{\"k\":");
        else
            buf_putc(&b, '[');
    }
    buf_putc(&b, '1'); /* the innermost value; an object member needs one */
    for (int i = depth - 1; i >= 0; i--)
        buf_putc(&b, objects && i % 2 ? '}' : ']');
    *len = b.len;
    return b.data;
}

TEST(depth_limit)
{
    size_t len;
    for (int objects = 0; objects < 2; objects++) {
        char *s = nested(JSON_READ_MAX_DEPTH, objects, &len);
        CHECK(accepts(s, len));
        free(s);
        s = nested(JSON_READ_MAX_DEPTH + 1, objects, &len);
        arena_t a;
        arena_init(&a, NULL, 0);
        json_error_t err;
        CHECK(json_parse(&a, s, len, &err) == NULL);
        CHECK(strcmp(err.message, "nesting too deep") == 0);
        CHECK(s[err.offset] == '[' || s[err.offset] == '{');
        arena_destroy(&a);
        free(s);
    }
    CHECK_EQ_INT(JSON_READ_MAX_DEPTH, 64);
}

TEST(structure_refusals)
{
    CHECK_REFUSED("", 0, "empty input");
    CHECK_REFUSED(" \n\t\r", 4, "empty input");
    check_refused(NULL, 0, 0, "empty input");
    CHECK_REFUSED("\xef\xbb\xbf[]", 0, "byte order mark not allowed");
    CHECK_REFUSED("[1] x", 4, "unexpected data after the value");
    CHECK_REFUSED("{} {}", 3, "unexpected data after the value");
    CHECK_REFUSED("[1,]", 3, "trailing comma");
    CHECK_REFUSED("{\"a\":1 , }", 9, "trailing comma");
    CHECK_REFUSED("[1 2]", 3, "expected ',' or ']'");
    CHECK_REFUSED("{\"a\":1 \"b\":2}", 7, "expected ',' or '}'");
    CHECK_REFUSED("{\"a\" 1}", 5, "expected ':'");
    CHECK_REFUSED("{1:1}", 1, "expected a string key");
    CHECK_REFUSED("[1 /* c */]", 3, "expected ',' or ']'");
    CHECK_REFUSED("// c\n1", 0, "comments are not allowed");
    CHECK_REFUSED("[tru]", 1, "invalid literal");
    CHECK_REFUSED("nul", 0, "invalid literal");
    CHECK_REFUSED("[", 1, "unexpected end of input");
    CHECK_REFUSED("[1", 2, "unexpected end of input");
    CHECK_REFUSED("{\"a\":1", 6, "unexpected end of input");
    CHECK(accepts(LIT(" \t\r\n[ \t\r\n1 \t\r\n] \t\r\n")));
}

TEST(error_line_and_column)
{
    arena_t a;
    arena_init(&a, NULL, 0);
    json_error_t err = {0};
    const char *text = "{\n  \"a\": [1,\n    2,\n    x]\n}";
    CHECK(json_parse(&a, text, strlen(text), &err) == NULL);
    CHECK_EQ_INT(err.offset, (size_t)(strchr(text, 'x') - text));
    CHECK_EQ_INT(err.line, 4);
    CHECK_EQ_INT(err.column, 5);
    CHECK(strcmp(err.message, "unexpected character") == 0);
    CHECK(json_parse(&a, "x", 1, &err) == NULL);
    CHECK(err.line == 1 && err.column == 1 && err.offset == 0);
    CHECK(json_parse(&a, "x", 1, NULL) == NULL); /* err may be NULL */
    arena_destroy(&a);
}

TEST(big_arrays_and_mixed_nesting)
{
    /* the scratch stack grows past its first block with containers open at several levels */
    buf_t b = BUF_INIT;
    buf_append_lit(&b, "[");
    for (int i = 0; i < 5000; i++)
        buf_printf(&b, "%s[%d,{\"x\":[%d,%d,%d],\"y\":\"s%d\"}]", i ? "," : "", i, i, i + 1, i + 2, i);
    buf_append_lit(&b, "]");
    arena_t a;
    arena_init(&a, NULL, 0);
    json_value_t *v = json_parse(&a, b.data, b.len, NULL);
    CHECK(v != NULL);
    CHECK_EQ_INT(json_array_len(v), 5000);
    for (size_t i = 0; i < 5000; i += 499) {
        const json_value_t *e = json_array_at(v, i);
        int64_t x = -1;
        CHECK(json_get_i64(json_array_at(e, 0), &x) && x == (int64_t)i);
        const json_value_t *o = json_array_at(e, 1);
        CHECK(json_get_i64(json_array_at(json_object_get(o, "x"), 2), &x) && x == (int64_t)i + 2);
        size_t n;
        const char *s = json_string(json_object_get(o, "y"), &n);
        char want[16];
        snprintf(want, sizeof(want), "s%zu", i);
        CHECK_STRN(s, n, want);
    }
    arena_destroy(&a);
    buf_free(&b);
}

TEST_MAIN()
