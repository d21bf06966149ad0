from typing import List


class AdderModel:
    def perform(self, numbers: List[float]) -> float:
        """
        Add numbers.
        :param numbers: list of numbers to sum up
        :return: sum of given numbers
        """
        return sum(numbers)

    def docs_input_example(self) -> dict:
        """Return example input values for this model"""
        return {'numbers': [40, 2]}
